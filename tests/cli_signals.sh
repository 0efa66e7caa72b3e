#!/usr/bin/env bash
# ctest case `cli_signals` (tests/CMakeLists.txt): SIGINT and SIGTERM stop `train` and
# `experiment` gracefully (core/interrupt.hpp).
#  1. `train`, SIGINT once the run has a checkpoint: exit 130, a message naming the run folder
#     and the command that resumes it, a checkpoint pair; that command continues in a new run
#     folder (after the interrupted epoch) that has its pair too, and SIGTERM stops it (143).
#  2. `experiment` of 3 runs, SIGTERM once the first has finished: exit 143, the summary of the
#     finished run written; `experiment --resume FOLDER` runs only what is missing (the first run
#     is reused, the interrupted one continues from its checkpoint) and its summary.csv equals
#     an uninterrupted experiment's, byte for byte.
# Usage: cli_signals.sh APP FIXTURES_DIR WORK_DIR
set -uo pipefail
app=$1 fixtures=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
fail() { echo "cli_signals: FAILED: $*"; exit 1; }
trap 'jobs -p | xargs -r kill -9 2>/dev/null' EXIT  # no process outlives the test
common=(--config "$fixtures/tiny.yaml" --set "data.path=$fixtures/tiny.inter" --set training.patience=1000000)

# Waits (up to 60 s) until the command's condition holds.
wait_for() {
  for _ in $(seq 1 1200); do eval "$1" && return 0; sleep 0.05; done
  return 1
}

# Once CONDITION holds, sends SIGNAL to PID and checks its exit status is WANT (128 + the signal).
signal_when() {  # PID CONDITION SIGNAL WANT WHAT
  wait_for "$2" || { kill -9 "$1"; fail "$5: never got to the point of the signal"; }
  kill -"$3" "$1"
  wait "$1"
  local rc=$?
  [ "$rc" = "$4" ] || fail "$5 exited $rc after SIG$3, expected $4"
}

# --- 1. train ---------------------------------------------------------------------------------
"$app" train "${common[@]}" --set training.epochs=1000000 --output "$work/train" > "$work/train.out" 2> "$work/train.err" &
signal_when $! '[ -e "$(ls -d "$work"/train/run-*/latest.ckpt 2>/dev/null | head -1)" ]' INT 130 train
cat "$work/train.err"
grep -q "interrupted by SIGINT after epoch [0-9]*: .*holds that epoch's checkpoints" "$work/train.err" || fail "no interruption message"
grep -q "^resume with: recdistill train --config .* --resume .*/train/run-" "$work/train.err" || fail "no resume command"
run=$(ls -d "$work"/train/run-* | head -1)
[ -e "$run/latest.ckpt" ] && [ -e "$run/best.ckpt" ] || fail "the run folder lacks its checkpoint pair"
# The resume command it printed (as printed, so the same settings) continues in a new run folder,
# which has the pair from its first moment; a SIGTERM stops it the same way.
# The new folder is named by the time it starts (run-<stamp>-seed<n>, with .1 only when the stamp
# is the same second's), so it is whichever run folder is not $run.
resumed_run() { ls -d "$work"/train/run-* 2>/dev/null | grep -vxF "$run" | head -1; }
resume_cmd=$(sed -n 's/^resume with: recdistill //p' "$work/train.err")
(eval "exec \"$app\" $resume_cmd") > "$work/resume.out" 2> "$work/resume.err" &
signal_when $! 'r=$(resumed_run); [ -n "$r" ] && [ -e "$r/latest.ckpt" ]' TERM 143 "the resumed train"
cat "$work/resume.err"
grep -q "interrupted by SIGTERM after epoch" "$work/resume.err" || fail "the resumed train did not stop gracefully"
run2=$(resumed_run)
[ -e "$run2/latest.ckpt" ] && [ -e "$run2/best.ckpt" ] || fail "the resumed run folder lacks its checkpoint pair"
first=$(sed -n 's/.*interrupted by SIGINT after epoch \([0-9]*\).*/\1/p' "$work/train.err" | head -1)
second=$(sed -n 's/.*interrupted by SIGTERM after epoch \([0-9]*\).*/\1/p' "$work/resume.err" | head -1)
[ -n "$second" ] && [ "$second" -gt "$first" ] || fail "the resumed run did not continue after epoch $first (stopped after '$second')"

# --- 2. experiment ----------------------------------------------------------------------------
exp=(experiment "${common[@]}" --set training.epochs=300 --seeds 1,2,3 --no-plots)
"$app" "${exp[@]}" --output "$work/straight" > "$work/straight.out" 2>&1 || { cat "$work/straight.out"; fail "the uninterrupted experiment failed"; }
"$app" "${exp[@]}" --output "$work/cut" > "$work/cut.out" 2>&1 &
signal_when $! 'grep -q "\"run_end\"" "$work"/cut/experiment-*/experiment.jsonl 2>/dev/null' TERM 143 experiment
cat "$work/cut.out"
dir=$(ls -d "$work"/cut/experiment-* | head -1)
grep -q "interrupted by SIGTERM during run 2/3" "$work/cut.out" || fail "no interruption message naming the run"
grep -q "the summary of the 1 finished run(s): .*summary.md" "$work/cut.out" || fail "no partial summary"
[ -f "$dir/summary.csv" ] || fail "no partial summary.csv"
grep -q "resume with: recdistill experiment --resume $dir" "$work/cut.out" || fail "no resume command"
"$app" experiment --resume "$dir" --no-plots > "$work/resumed.out" 2>&1 || { cat "$work/resumed.out"; fail "experiment --resume failed"; }
cat "$work/resumed.out"
grep -q "resuming: 1 run(s) finished, 1 interrupted" "$work/resumed.out" || fail "the resume did not find the finished and interrupted runs"
grep -q "\[1/3\] base seed 1: finished before" "$work/resumed.out" || fail "the finished run was not reused"
cmp "$dir/summary.csv" "$(ls -d "$work"/straight/experiment-*)/summary.csv" || fail "the resumed experiment's summary.csv differs from the uninterrupted one's"
echo "cli_signals: all checks passed"
