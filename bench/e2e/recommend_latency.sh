#!/usr/bin/env bash
# recommend latency per request for an exported SASRec (docs/BENCHMARKS.md, "recommend latency
# (exported SASRec, ml-100k)"): runs BUILD/bench/recommend_latency RUNS times (default 3), each
# run only once the 1-minute load average is below MAX_LOAD (default 1.2; waits up to WAIT_S
# seconds in all, default 1200), logging the load before and after each run. The benchmark
# itself adds about 1.0 to the load while it runs.
#
#   bash bench/e2e/recommend_latency.sh BUILD EXPORT_DIR OUT.txt [RUNS]
#
# EXPORT_DIR is what `recdistill export RUN --output EXPORT_DIR` wrote. Run from the repo root
# (the exported config names data/ml-100k/ml-100k.inter relative to it). OUT.txt gets the raw
# output: the load lines, each run's JSON line and human line.
set -euo pipefail
build=${1:?build folder}; export_dir=${2:?export folder}; out=${3:?output file}; runs=${4:-3}
max_load=${MAX_LOAD:-1.2}; wait_s=${WAIT_S:-1200}
load1() { cut -d' ' -f1 /proc/loadavg; }
waited=0
wait_idle() {
  until awk -v l="$(load1)" -v m="$max_load" 'BEGIN { exit !(l < m) }'; do
    if (( waited >= wait_s )); then echo "load $(load1) still >= $max_load after ${wait_s} s; not timing" >&2; exit 1; fi
    sleep 15; waited=$((waited + 15))
  done
}
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD) $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores"
  echo "# OMP_NUM_THREADS=1 $build/bench/recommend_latency --model-path $export_dir --plugin-dir $build/plugins"
  for i in $(seq 1 "$runs"); do
    wait_idle
    echo "# run $i: before: $(uptime)"
    OMP_NUM_THREADS=1 "$build/bench/recommend_latency" --model-path "$export_dir" --plugin-dir "$build/plugins"
    echo "# run $i: after: $(uptime)"
  done
} | tee "$out"
