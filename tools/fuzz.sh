#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer + UBSan) in build-fuzz and runs each
# for FUZZ_SECONDS on a scratch copy of its committed seed corpus
# (tests/fuzz/corpus/<name>/; the committed corpus is never written). Prints each target's
# execution count and fails on any finding (crash, leak, UB, uncaught exception, timeout).
#
# FUZZ_SECONDS defaults to FUZZ_TOTAL_SECONDS (420) shared among the targets, at most 60 each,
# so the stage stays within about 8 minutes (with the build) whatever the number of targets.
# Environment: FUZZ_SECONDS, FUZZ_TOTAL_SECONDS (420), FUZZ_TARGETS (all: tests/fuzz/*_fuzz.cpp), FUZZ_BUILD_DIR (build-fuzz),
# FUZZ_CXX (clang++-14), FUZZ_JOBS (build jobs, 2), FUZZ_KEEP (1: keep the scratch folder).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
cxx=${FUZZ_CXX:-clang++-14}
jobs=${FUZZ_JOBS:-2}
# Default: every tests/fuzz/<name>_fuzz.cpp.
all=$(cd "$root/tests/fuzz" && ls *_fuzz.cpp | sed 's/_fuzz\.cpp$//' | tr '\n' ' ')
read -r -a targets <<< "${FUZZ_TARGETS:-$all}"
share=$(( ${FUZZ_TOTAL_SECONDS:-420} / ${#targets[@]} ))
[ "$share" -gt 60 ] && share=60
secs=${FUZZ_SECONDS:-$share}

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

# An impossible allocation (a crafted length field) throws std::bad_alloc as it does without
# ASan, and parsers may catch it; an allocation above -rss_limit_mb is still a finding.
export ASAN_OPTIONS="allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
scratch=$(mktemp -d /tmp/recdistill-fuzz.XXXXXX)
status=0
summary=""
for t in "${targets[@]}"; do
  dir="$scratch/$t"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -R "$root/tests/fuzz/corpus/$t/." "$dir/corpus/"
  echo "== $t: ${secs}s on $(ls "$dir/corpus" | wc -l) seed inputs"
  set +e
  "$build/tests/fuzz/${t}_fuzz" -max_total_time="$secs" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$dir/artifacts/" "$dir/corpus" > "$dir/log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  echo "   $t: exit $rc, stat::number_of_executed_units: ${execs:-?}"
  summary+=$(printf '%-14s %12s executions  exit %s' "$t" "${execs:-?}" "$rc")$'\n'
  if [ "$rc" -ne 0 ] || ls "$dir/artifacts/"* > /dev/null 2>&1; then
    status=1
    echo "   FINDING in $t (log and reproducer kept in $dir):"
    grep -E "ERROR:|runtime error|SUMMARY|terminate called|what\(\)" "$dir/log" | head -20 | sed 's/^/   /'
    ls "$dir/artifacts/" | sed 's/^/   artifact: /'
  fi
done
end=$(date +%s)
echo "== fuzz summary (${secs}s per target; build $((built - start))s, total $((end - start))s)"
printf '%s' "$summary"
if [ "$status" -eq 0 ] && [ "${FUZZ_KEEP:-0}" != 1 ]; then rm -rf "$scratch"; fi
[ "$status" -eq 0 ] && echo "fuzz: no findings" || echo "fuzz: FINDINGS (see above; scratch: $scratch)"
exit "$status"
