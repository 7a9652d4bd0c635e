#!/usr/bin/env bash
# Builds aetrain with the Swift runtime linked in (--static-swift-stdlib) and installs it
# under PREFIX/bin, for nodes without the Swift toolchain:
#
#   deploy/install.sh PREFIX      e.g. deploy/install.sh /shared/aetrain
#
# Installs PREFIX/bin/aetrain and, beside it, PREFIX/bin/aetrain_AETrainCore.resources (the
# embedded dataset, which aetrain looks for next to its own executable). A node then needs
# only Debian's runtime packages for Open MPI, OpenBLAS, libjpeg and libpng:
#   apt-get install openmpi-bin libopenmpi3 libopenblas0-pthread libjpeg62-turbo libpng16-16
# The build has its own scratch directory (.build-static), apart from `swift build`'s .build.
set -euo pipefail
[ $# = 1 ] || { echo "error: usage: deploy/install.sh PREFIX" >&2; exit 2; }
[ -n "$1" ] || { echo "error: deploy/install.sh: PREFIX is empty (it would install into /bin); give a directory, e.g. /shared/aetrain" >&2; exit 2; }
# A relative PREFIX names a place from the caller's directory, not from the repository's.
case $1 in /*) prefix=$1 ;; *) prefix=$PWD/$1 ;; esac
cd "$(dirname "$0")/.."
source deploy/common.sh
install_system_packages
build=(swift build -c release --static-swift-stdlib --scratch-path .build-static)
"${build[@]}" --product aetrain
bin=$("${build[@]}" --show-bin-path)
install -d "$prefix/bin"
install -m 0755 "$bin/aetrain" "$prefix/bin/aetrain"
rm -rf "$prefix/bin/aetrain_AETrainCore.resources"
cp -R "$bin/aetrain_AETrainCore.resources" "$prefix/bin/"
echo "installed $prefix/bin/aetrain ($(du -h "$prefix/bin/aetrain" | cut -f1)) and $prefix/bin/aetrain_AETrainCore.resources"
