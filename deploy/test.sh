#!/usr/bin/env bash
# The test suite on a fresh Debian 12 machine with the Swift toolchain, in release mode.
#
#   bash deploy/test.sh          the whole suite: installs what is missing (OpenMPI, OpenBLAS,
#                                libjpeg, libpng, Chromium, Slurm, munge, numpy, Pillow,
#                                safetensors, tensorboard), builds, runs unit, end-to-end and
#                                multi-rank tests (mpirun with up to 4 ranks, --oversubscribe;
#                                network-namespace hosts; a one-node Slurm cluster)
#   bash deploy/test.sh fast     the inner loop: the unit tests only (AETrainCoreTests: ranks
#                                as threads in one process, no mpirun, no Python), about a
#                                minute of tests on 2 cores; installs only the build's packages
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/common.sh
case "${1:-full}" in
  fast)
    install_system_packages
    swift test -c release --filter '^AETrainCoreTests\.'
    ;;
  full)
    install_system_packages chromium iproute2 slurmctld slurmd slurm-client munge   # chromium: the report in a headless browser; iproute2: the namespace cluster; Slurm and munge: deploy/slurm-cluster.sh
    install_python_test_packages
    swift build -c release
    swift test -c release
    ;;
  *)
    echo "error: usage: bash deploy/test.sh [fast]   (no argument: the whole suite)" >&2
    exit 2
    ;;
esac
