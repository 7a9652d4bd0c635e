# Shared by deploy/*.sh: finds the Swift toolchain, installs the system packages aetrain
# needs when they are missing, and lets OpenMPI run as root (only when we are root).

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi

# OpenMPI refuses to start as root unless told twice.
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

# Debian packages: MPI (headers, library, mpirun), OpenBLAS (CBLAS + LAPACK), libjpeg, libpng.
AETRAIN_APT_PACKAGES=(libopenmpi-dev openmpi-bin libopenblas-dev libjpeg-dev libpng-dev)

install_system_packages() {
  local missing=() pkg
  for pkg in "${AETRAIN_APT_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# numpy, Pillow, safetensors and tensorboard: the tests' independent readers and writers of .npy,
# PNG, safetensors and TensorBoard event files, and the reference for LFW's crop/resize
# (scikit-learn resizes with Pillow).
install_python_test_packages() {
  python3 -c 'import numpy' 2>/dev/null || python3 -m pip install -q numpy
  python3 -c 'import PIL' 2>/dev/null || python3 -m pip install -q pillow
  python3 -c 'import safetensors' 2>/dev/null || python3 -m pip install -q safetensors
  python3 -c 'import tensorboard' 2>/dev/null || python3 -m pip install -q tensorboard
}

# The benchmark scripts' preconditions: PyTorch for the comparison step, a built binary.
require_torch() {
  python3 -c "import torch" 2>/dev/null && return
  echo "error: PyTorch is missing: pip install torch" >&2
  exit 2
}
require_aetrain() {
  [ -x "$1" ] && return
  echo "error: no aetrain binary at $1: swift build -c release" >&2
  exit 2
}
