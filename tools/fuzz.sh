#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer + UBSan) in build-fuzz and runs each
# for FUZZ_SECONDS on a scratch copy of its committed seed corpus
# (tests/fuzz/corpus/<name>/; the committed corpus is never written). Prints each target's
# execution count and fails on any finding (crash, leak, UB, uncaught exception, timeout).
#
# Before fuzzing, each target runs once over its kept reproducers (tests/fuzz/regressions/<name>_*
# and any files in tests/fuzz/regressions/<name>/), which then join its scratch corpus.
#
# Execution floors (tests/fuzz/floors.txt: "<name> <executions per second>"): a target that
# executes fewer than floor x FUZZ_SECONDS inputs fails the run, as does one without a floor,
# without a seed corpus or whose log has no stat::number_of_executed_units line, so that a
# target that silently stopped working (exits at the first input, lost its corpus) cannot pass.
#
# Time: the whole stage (build included) is held to FUZZ_STAGE_SECONDS (480, 8 minutes) whatever
# the number of targets. After the build, the targets run FUZZ_RUN_JOBS at a time (one core each;
# the default is the number of cores), in waves of that many; each target gets an equal share of
# what is left of the stage, at most FUZZ_TOTAL_SECONDS (420) of wall time in all, less 2 s for
# its start, regression inputs and exit (measured 1.3 s), at least 5 s and at most 60 s.
# FUZZ_SECONDS sets a fixed time instead.
# Environment: FUZZ_SECONDS, FUZZ_TOTAL_SECONDS (420), FUZZ_STAGE_SECONDS (480), FUZZ_TARGETS (all:
# tests/fuzz/*_fuzz.cpp), FUZZ_BUILD_DIR (build-fuzz), FUZZ_CXX (clang++-14), FUZZ_JOBS (build
# jobs, 2), FUZZ_RUN_JOBS (targets fuzzed at once, nproc), FUZZ_KEEP (1: keep the scratch folder).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
cxx=${FUZZ_CXX:-clang++-14}
jobs=${FUZZ_JOBS:-2}
run_jobs=${FUZZ_RUN_JOBS:-$(nproc)}
if ! [ "$run_jobs" -ge 1 ] 2> /dev/null; then
  echo "fuzz.sh: FUZZ_RUN_JOBS must be a whole number of at least 1, found '$run_jobs'" >&2
  exit 1
fi
# Default: every tests/fuzz/<name>_fuzz.cpp.
all=$(cd "$root/tests/fuzz" && ls *_fuzz.cpp | sed 's/_fuzz\.cpp$//' | tr '\n' ' ')
read -r -a targets <<< "${FUZZ_TARGETS:-$all}"

if ! command -v "$cxx" > /dev/null; then
  echo "fuzz.sh: $cxx not found (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 1
fi
start=$(date +%s)
mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$cxx" -DRECDISTILL_BUILD_FUZZ=ON -DRECDISTILL_BUILD_TESTS=OFF \
  -DRECDISTILL_BUILD_APPS=OFF -DRECDISTILL_BUILD_PLUGINS=OFF -DRECDISTILL_BUILD_BENCH=OFF \
  -DRECDISTILL_CUDA=OFF > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
bins=()
for t in "${targets[@]}"; do bins+=("${t}_fuzz"); done
ninja -C "$build" -j"$jobs" "${bins[@]}"
built=$(date +%s)
if [ -n "${FUZZ_SECONDS:-}" ]; then
  secs=$FUZZ_SECONDS
else
  budget=$(( ${FUZZ_STAGE_SECONDS:-480} - (built - start) ))
  [ "$budget" -gt "${FUZZ_TOTAL_SECONDS:-420}" ] && budget=${FUZZ_TOTAL_SECONDS:-420}
  waves=$(( (${#targets[@]} + run_jobs - 1) / run_jobs ))
  secs=$(( budget / waves - 2 ))
  [ "$secs" -gt 60 ] && secs=60
  if [ "$secs" -lt 5 ]; then
    echo "fuzz.sh: the build took $((built - start))s of the ${FUZZ_STAGE_SECONDS:-480}s stage; 5s per target" \
         "will run over it"
    secs=5
  fi
fi

# An impossible allocation (a crafted length field) throws std::bad_alloc as it does without
# ASan, and parsers may catch it; an allocation above -rss_limit_mb is still a finding.
export ASAN_OPTIONS="allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
scratch=$(mktemp -d /tmp/recdistill-fuzz.XXXXXX)
floors_file="$root/tests/fuzz/floors.txt"
# fuzz_one NAME: one target's regression inputs and its fuzzing, in its own scratch folder
# ($scratch/NAME): what it prints goes to out, its summary line to summary, and a file `failed`
# marks a failure (a finding, a floor, a missing corpus or stat line).
fuzz_one() {
  local t=$1 dir="$scratch/$1" bin="$build/tests/fuzz/${1}_fuzz" floor rc min execs rate
  mkdir -p "$dir/corpus" "$dir/artifacts"
  # (a background job: its own output file, and no set -e, so that it always writes its summary)
  set +e
  exec > "$dir/out" 2>&1
  fail_target() {
    touch "$dir/failed"
    echo "   FAILED $t: $1"
  }
  floor=$(awk -v t="$t" '$1 == t { print $2 }' "$floors_file" 2> /dev/null)
  if [ -z "$floor" ]; then
    fail_target "no execution floor for '$t' in tests/fuzz/floors.txt"
    printf '%-16s %12s executions  no floor\n' "$t" "-" > "$dir/summary"
    return
  fi
  if [ ! -d "$root/tests/fuzz/corpus/$t" ] || [ -z "$(ls -A "$root/tests/fuzz/corpus/$t")" ]; then
    fail_target "no seed corpus in tests/fuzz/corpus/$t/"
    printf '%-16s %12s executions  no corpus\n' "$t" "-" > "$dir/summary"
    return
  fi
  cp -R "$root/tests/fuzz/corpus/$t/." "$dir/corpus/"
  # The kept reproducers: each runs once, then seeds the fuzzing.
  local regs=() f
  for f in "$root/tests/fuzz/regressions/${t}_"* "$root/tests/fuzz/regressions/$t/"*; do
    [ -f "$f" ] && regs+=("$f")
  done
  if [ "${#regs[@]}" -gt 0 ]; then
    "$bin" -timeout=10 -rss_limit_mb=2048 "${regs[@]}" > "$dir/regressions.log" 2>&1
    rc=$?
    echo "== $t: ${#regs[@]} regression input(s): exit $rc"
    if [ "$rc" -ne 0 ]; then
      fail_target "a kept reproducer fails again (log: $dir/regressions.log)"
      grep -E "ERROR:|runtime error|SUMMARY|terminate called|what\(\)|Running:" "$dir/regressions.log" | tail -20 | sed 's/^/   /'
    fi
    for f in "${regs[@]}"; do cp "$f" "$dir/corpus/regression_$(basename "$f")"; done
  fi
  min=$(awk -v f="$floor" -v s="$secs" 'BEGIN { printf "%d", f * s }')
  echo "== $t: ${secs}s on $(ls "$dir/corpus" | wc -l) seed inputs (floor ${floor}/s: at least $min executions)"
  "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$dir/artifacts/" "$dir/corpus" > "$dir/log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  rate=$(awk -v e="${execs:-0}" -v s="$secs" 'BEGIN { printf "%d", e / s }')
  echo "   $t: exit $rc, stat::number_of_executed_units: ${execs:-?} (${rate}/s)"
  printf '%-16s %12s executions  %8s/s  floor %6s/s  exit %s\n' "$t" "${execs:-?}" "$rate" "$floor" "$rc" > "$dir/summary"
  if [ "$rc" -ne 0 ] || ls "$dir/artifacts/"* > /dev/null 2>&1; then
    touch "$dir/failed"
    echo "   FINDING in $t (log and reproducer kept in $dir):"
    grep -E "ERROR:|runtime error|SUMMARY|terminate called|what\(\)" "$dir/log" | head -20 | sed 's/^/   /'
    ls "$dir/artifacts/" | sed 's/^/   artifact: /'
  elif [ -z "$execs" ]; then
    fail_target "its log has no stat::number_of_executed_units line (log: $dir/log)"
  elif [ "$execs" -lt "$min" ]; then
    fail_target "executed $execs inputs in ${secs}s, below its floor of $min (${floor}/s in tests/fuzz/floors.txt)"
  fi
}
# FUZZ_RUN_JOBS targets at a time (each target is one process on one core), then their reports
# in target order.
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$run_jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
wait
status=0
summary=""
for t in "${targets[@]}"; do
  cat "$scratch/$t/out" 2> /dev/null
  if [ -s "$scratch/$t/summary" ]; then
    summary+=$(cat "$scratch/$t/summary")$'\n'
  else
    summary+="$t: no summary (the job ended early: $scratch/$t/out)"$'\n'
    status=1
  fi
  if [ -e "$scratch/$t/failed" ]; then status=1; fi
done
end=$(date +%s)
echo "== fuzz summary (${secs}s per target, $run_jobs at a time; build $((built - start))s, total $((end - start))s)"
printf '%s' "$summary"
if [ "$status" -eq 0 ] && [ "${FUZZ_KEEP:-0}" != 1 ]; then rm -rf "$scratch"; fi
[ "$status" -eq 0 ] && echo "fuzz: no findings, every target above its floor" ||
  echo "fuzz: FAILED: findings or targets below their floor (see above; scratch: $scratch)"
exit "$status"
