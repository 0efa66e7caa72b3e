# Sourced by run_scaling.sh and run_session_scaling.sh, which set $app and $out.
mpirun=(mpirun --oversubscribe --allow-run-as-root --mca btl self,vader --bind-to none)
# train_as NAME RANKS THREADS ARGS...: `recdistill train ARGS` as RANKS ranks x THREADS threads;
# its log goes to $out/NAME.log, its results.json to $out/NAME.json, its run folder to $out/runs_NAME.
train_as() {
  local name=$1 ranks=$2 threads=$3
  shift 3
  local cmd=("$app" train "$@" --set runtime.threads="$threads" --output "$out/runs_$name")
  if [ "$ranks" -gt 1 ]; then cmd=("${mpirun[@]}" -np "$ranks" -x OMP_NUM_THREADS="$threads" "${cmd[@]}"); fi
  OMP_NUM_THREADS=$threads "${cmd[@]}" > "$out/$name.log" 2>&1
  cp "$(ls -d "$out"/runs_"$name"/run-* | tail -1)/results.json" "$out/$name.json"
}
