#!/usr/bin/env bash
# ctest case `cli_dist` (tests/CMakeLists.txt): `recdistill train` under mpirun -np 2.
#  1. A data-parallel train writes one run folder (rank 0's) with its results; a second run
#     gives the same results.json metrics and weights, bit for bit.
#  2. One process refuses to resume the 2-rank run folder, naming both rank counts.
#  3. A rank that hangs ends the job within the timeout, and the message names it.
#  4. A rank that dies ends the job, and mpirun's message names it.
#  5. Commands other than train and experiment refuse to run under mpirun with 2 ranks.
#  6. `experiment` under mpirun spreads its runs over the ranks: its summary.csv equals the
#     one-process experiment's, byte for byte, and every run folder is there.
#  7. A session model through its plugin (STAMP with in-batch BPR, whose negatives the ranks
#     all-gather) trains data-parallel to its results.
# Usage: cli_dist.sh APP FIXTURES_DIR WORK_DIR MPIEXEC
set -uo pipefail
app=$1 fixtures=$2 work=$3 mpiexec=$4
rm -rf "$work" && mkdir -p "$work"
fail() { echo "cli_dist: FAILED: $*"; exit 1; }
mpirun=("$mpiexec" -np 2 --oversubscribe --allow-run-as-root --mca btl self,vader --bind-to none)
common=(--config "$fixtures/tiny.yaml" --set "data.path=$fixtures/tiny.inter" --set training.epochs=3)

# --- 1. one run folder, the same bits twice ---------------------------------------------------
for k in a b; do
  "${mpirun[@]}" "$app" train "${common[@]}" --output "$work/$k" > "$work/$k.out" 2>&1 || { cat "$work/$k.out"; fail "run $k exited $?"; }
  [ "$(ls -d "$work/$k"/run-* | wc -l)" = 1 ] || fail "run $k made $(ls -d "$work/$k"/run-* | wc -l) run folders"
  [ "$(grep -c '^data-parallel: 2 ranks' "$work/$k.out")" = 1 ] || fail "run $k: rank 0 alone should print"
done
ra=$(ls -d "$work"/a/run-*) rb=$(ls -d "$work"/b/run-*)
for f in results.json model.safetensors latest.ckpt; do [ -s "$ra/$f" ] || fail "no $f in $ra"; done
# results.json differs in its timings only.
strip() { grep -v '_seconds' "$1"; }
[ "$(strip "$ra/results.json")" = "$(strip "$rb/results.json")" ] || fail "two 2-rank runs differ: $(diff <(strip "$ra/results.json") <(strip "$rb/results.json"))"
cmp -s "$ra/model.safetensors" "$rb/model.safetensors" || fail "two 2-rank runs wrote different weights"

# --- 2. one process refuses the 2-rank checkpoint ------------------------------------------------
"$app" train "${common[@]}" --set training.epochs=4 --output "$work/one" --resume "$ra" > "$work/one.out" 2>&1
rc=$?
[ "$rc" = 1 ] || { cat "$work/one.out"; fail "resuming a 2-rank run in one process exited $rc, expected 1"; }
grep -q "trained by 2 data-parallel rank(s), this run has 1: resume with the same number of ranks (mpirun -np 2)" "$work/one.out" \
  || { cat "$work/one.out"; fail "no message naming the rank counts"; }

# --- 3. a hung rank ------------------------------------------------------------------------------
start=$(date +%s)
RECDISTILL_TEST_HANG_AT=1:6 timeout 120 "${mpirun[@]}" -x RECDISTILL_TEST_HANG_AT "$app" train "${common[@]}" \
  --set runtime.dist_timeout_s=10 --output "$work/hang" > "$work/hang.out" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
[ "$rc" != 0 ] && [ "$rc" != 124 ] || { cat "$work/hang.out"; fail "a hung rank: exit $rc after $took s"; }
# (rank 1 hangs at collective #6; on a loaded machine it may already be 10 s late at an earlier one)
grep -q "rank 0 of 2: error: waited [0-9]* s (runtime.dist_timeout_s 10) at .* (collective #[1-6]): rank 1 did not arrive" "$work/hang.out" \
  || { cat "$work/hang.out"; fail "the hang message does not name rank 1"; }

# --- 4. a dead rank ------------------------------------------------------------------------------
RECDISTILL_TEST_EXIT_AT=1:6 timeout 120 "${mpirun[@]}" -x RECDISTILL_TEST_EXIT_AT "$app" train "${common[@]}" \
  --set runtime.dist_timeout_s=60 --output "$work/dead" > "$work/dead.out" 2>&1
rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || { cat "$work/dead.out"; fail "a dead rank: exit $rc"; }
grep -Eq "Process name: \[\[[0-9]+,[0-9]+\],1\]|rank 1 " "$work/dead.out" || { cat "$work/dead.out"; fail "the message does not name rank 1"; }

# --- 5. other commands refuse ------------------------------------------------------------------------
"${mpirun[@]}" "$app" evaluate --run "$ra" > "$work/eval.out" 2>&1
rc=$?
[ "$rc" != 0 ] || fail "evaluate under mpirun -np 2 exited 0"
grep -q "recdistill evaluate does not run under mpirun with several ranks" "$work/eval.out" || { cat "$work/eval.out"; fail "no refusal message"; }

# --- 6. an experiment spread over the ranks ------------------------------------------------------
exp=(experiment --config "$fixtures/tiny.yaml" --set "data.path=$fixtures/tiny.inter" --seeds 2020,2021,2022 --no-plots)
"$app" "${exp[@]}" --output "$work/exp1" > "$work/exp1.out" 2>&1 || { cat "$work/exp1.out"; fail "one-process experiment"; }
"${mpirun[@]}" "$app" "${exp[@]}" --output "$work/exp2" > "$work/exp2.out" 2>&1 || { cat "$work/exp2.out"; fail "experiment under mpirun"; }
s1=$(ls "$work"/exp1/experiment-*/summary.csv) s2=$(ls "$work"/exp2/experiment-*/summary.csv)
cmp -s "$s1" "$s2" || fail "the spread experiment's summary differs: $(diff "$s1" "$s2")"
[ "$(ls -d "$work"/exp2/experiment-*/runs/base/run-* | wc -l)" = 3 ] || fail "the spread experiment lacks run folders"
[ "$(grep -c 'experiment done: 3 runs' "$work/exp2.out")" = 1 ] || { cat "$work/exp2.out"; fail "rank 0 alone should print the summary"; }

# --- 7. a session model with in-batch negatives ---------------------------------------------------
"${mpirun[@]}" "$app" train --config "$fixtures/tiny_stamp.yaml" --set "data.path=$fixtures/tiny.inter" \
  --output "$work/stamp" > "$work/stamp.out" 2>&1 || { cat "$work/stamp.out"; fail "STAMP under mpirun"; }
grep -q '^data-parallel: 2 ranks' "$work/stamp.out" || { cat "$work/stamp.out"; fail "STAMP did not train data-parallel"; }
grep -q '"NDCG@10"' "$(ls -d "$work"/stamp/run-*)/results.json" || fail "STAMP under mpirun wrote no test metrics"

echo "cli_dist: all checks passed"
