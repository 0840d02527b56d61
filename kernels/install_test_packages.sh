#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the test suite needs for the kernels (README command 2 runs it):
#   bazel-bootstrap        Bazel 4.2, builds kernels/ offline (WORKSPACE points at local stubs)
#   g++-aarch64-linux-gnu  cross compiler for the aarch64 NEON kernel
#   qemu-user              runs that aarch64 test binary on an x86 machine
#   libsimde-dev           SIMDe headers: the AVX-512 kernel tested on CPUs without AVX-512
# Packages already installed are left alone; `sudo` is used only when not running as root.
set -euo pipefail
PACKAGES=(bazel-bootstrap g++-aarch64-linux-gnu qemu-user libsimde-dev)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "Installing ${missing[*]}"
$SUDO apt-get install -y -q "${missing[@]}" || { $SUDO apt-get update -q && $SUDO apt-get install -y -q "${missing[@]}"; }
