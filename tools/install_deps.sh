#!/usr/bin/env bash
# Installs the Debian 12 packages recdistill needs to build and test. Idempotent and
# non-interactive: packages already present are skipped, so running it twice is cheap.
set -euo pipefail
pkgs=(build-essential cmake ninja-build libeigen3-dev libboost1.74-dev
      libboost-program-options1.74-dev libboost-serialization1.74-dev
      libsimdjson-dev libyaml-cpp-dev libgtest-dev libbenchmark-dev unzip python3-pip
      libcurl4-openssl-dev libssl-dev  # the LLM client (llm/)
      clang-14 libclang-rt-14-dev libomp-14-dev  # clang, libFuzzer, its OpenMP: tools/fuzz.sh, tools/sanitize.sh
      libopenmpi-dev openmpi-bin  # data-parallel training under mpirun (docs/distributed.md)
      gnuplot-nox)  # PNG plots of `recdistill experiment` (tables are written without it)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "installing: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
