#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine with the Swift toolchain: installs what is
# missing (OpenMPI, OpenBLAS, libjpeg, libpng, Chromium, Slurm, munge, numpy, Pillow, safetensors), builds in release mode, runs unit, end-to-end and
# multi-rank tests (mpirun with up to 4 ranks, --oversubscribe; a one-node Slurm cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/common.sh
install_system_packages chromium iproute2 slurmctld slurmd slurm-client munge   # chromium: the report in a headless browser; iproute2: the namespace cluster; Slurm and munge: deploy/slurm-cluster.sh
install_python_test_packages
swift build -c release
swift test -c release
