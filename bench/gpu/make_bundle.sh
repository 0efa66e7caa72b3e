#!/usr/bin/env bash
# Builds what a GPU machine runs (the device tool's machine has no Debian -dev packages): the app,
# the plugins (the CUDA SASRec plugin among them) and the CUDA test binary, for sm_90 with
# RECDISTILL_PORTABLE=ON (no -march=native), into .gpu/ with the shared libraries they need that
# a bare machine lacks (.gpu/lib; the CUDA driver, runtime and cuBLAS come from the machine).
# Then: carry .gpu and data/ml-100k, and run bench/gpu/device_checks.sh there (docs/cuda.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD:-build-gpu}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRECDISTILL_PORTABLE=ON -DRECDISTILL_CUDA=ON \
  -DRECDISTILL_BUILD_TESTS=ON -DRECDISTILL_BUILD_APPS=ON -DRECDISTILL_BUILD_CPU_TESTS=OFF \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DRECDISTILL_NCCL=OFF > /dev/null  # libnccl (218 MB) is over the carry limit
ninja -C "$build" recdistill_app recdistill_sasrec recdistill_bert4rec recdistill_session recdistill_sequential_cuda recdistill_cuda_tests
rm -rf .gpu && mkdir -p .gpu/apps .gpu/plugins .gpu/tests .gpu/lib
cp "$build/apps/recdistill" .gpu/apps/
cp "$build"/plugins/librecdistill_sasrec.so "$build"/plugins/librecdistill_bert4rec.so "$build"/plugins/librecdistill_session.so \
  "$build"/plugins/librecdistill_sequential_cuda.so .gpu/plugins/
cp "$build/tests/recdistill_cuda_tests" .gpu/tests/
# Every non-CUDA library outside libc's family that the binaries load, from this machine.
for f in .gpu/apps/recdistill .gpu/plugins/*.so .gpu/tests/recdistill_cuda_tests; do
  ldd "$f" | awk '/=> \// {print $3}'
done | sort -u | grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libgcc_s|libstdc\+\+)\.so|libcuda|libcudart|libcublas' \
  | while read -r lib; do cp -L "$lib" .gpu/lib/; done
du -sh .gpu
