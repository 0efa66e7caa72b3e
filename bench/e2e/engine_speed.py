#!/usr/bin/python3
"""SASRec training seconds per epoch of two builds of `recdistill`, side by side.

    /usr/bin/python3 bench/e2e/engine_speed.py --old OLD_BUILD/apps/recdistill \
        --new NEW_BUILD/apps/recdistill [--epochs 3] [--repeats 2] [--batches 32 256] \
        [--threads 1 2] [--out bench/results/engine_speed.json] [--config experiments/sasrec_ml100k.yaml]

Run from the repository root (the config and its data path are read relative to it), on an
otherwise idle machine. Each binary finds the plugins/ folder of its own build tree.

For every repeat and every (batch, threads) setting it trains the old and the new build one
right after the other, alternating which goes first from one repeat to the next, so both see
the same machine state. Invocation as in run_benchmarks.py (`ours`): `recdistill train` with
training.epochs, training.eval_every=epochs, runtime.threads and training.batch_size set and
OMP_NUM_THREADS=threads; seconds are the "train_seconds" of each "epoch" event in the run's
metrics.jsonl. With 3 or more epochs the first epoch of each run is dropped as warm-up.

Writes every raw epoch time and each run's epoch-1 training loss to --out (JSON), prints a
Markdown table (also written next to --out with suffix .md) and the epoch-1 losses of both
builds at full precision (the shortest text that reads back to the logged double), which shows
whether the two builds compute the same thing.
"""
import argparse
import glob
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def file_info(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    st = os.stat(path)
    return dict(path=path, sha256=h.hexdigest(), bytes=st.st_size,
                mtime=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(st.st_mtime)))


def train(binary, config, threads, batch, epochs, out_dir):
    """One `recdistill train` run; returns its epoch events from metrics.jsonl."""
    cmd = [binary, "train", "--config", config,
           "--set", f"training.epochs={epochs}", "--set", f"training.eval_every={epochs}",
           "--set", f"runtime.threads={threads}", "--set", f"training.batch_size={batch}",
           "--output", out_dir]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"engine_speed: {' '.join(cmd)} exited {p.returncode}:\n{p.stdout[-4000:]}")
    runs = sorted(glob.glob(os.path.join(out_dir, "run-*")))
    if len(runs) != 1:
        sys.exit(f"engine_speed: expected one run folder in {out_dir}, found {runs}")
    with open(os.path.join(runs[0], "metrics.jsonl")) as f:
        events = [json.loads(line) for line in f if line.strip()]
    epochs_ev = [e for e in events if e.get("event") == "epoch"]
    if len(epochs_ev) != epochs:
        sys.exit(f"engine_speed: {runs[0]}/metrics.jsonl has {len(epochs_ev)} epoch events, expected {epochs}")
    return epochs_ev, wall


def mean_sd(v):
    if not v:
        return float("nan"), float("nan")
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else float("nan"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="the old build's recdistill binary")
    ap.add_argument("--new", required=True, help="the new build's recdistill binary")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 256])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default="bench/results/engine_speed.json")
    ap.add_argument("--config", default="experiments/sasrec_ml100k.yaml")
    ap.add_argument("--keep-runs", action="store_true", help="keep the run folders (printed at the end)")
    a = ap.parse_args()
    if a.epochs < 1 or a.repeats < 1:
        ap.error("--epochs and --repeats must be at least 1")

    builds = {}
    for name, path in (("old", a.old), ("new", a.new)):
        path = os.path.abspath(path)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            ap.error(f"--{name} {path}: not an executable file")
        builds[name] = path
    if not os.path.isfile(a.config):
        ap.error(f"--config {a.config}: not found (run from the repository root)")
    drop = 1 if a.epochs >= 3 else 0
    ncpu = os.cpu_count() or 1
    if max(a.threads) > ncpu:
        print(f"warning: --threads up to {max(a.threads)} on {ncpu} CPUs", file=sys.stderr)
    load0 = os.getloadavg()
    if load0[0] > 0.5:
        print(f"warning: load average {load0[0]:.2f} at start: the machine is not idle, timings are noisy",
              file=sys.stderr)

    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()[:20]
    except OSError:
        lscpu = []
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        head = ""
    res = dict(date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), cwd=os.getcwd(), git_head=head,
               host=platform.node(), cpus=ncpu, machine=lscpu, loadavg_start=list(load0),
               builds={k: file_info(v) for k, v in builds.items()},
               args=dict(epochs=a.epochs, repeats=a.repeats, batches=a.batches, threads=a.threads,
                         config=a.config),
               dropped_warmup_epochs=drop, runs=[])

    settings = [(b, t) for b in a.batches for t in a.threads]
    work = tempfile.mkdtemp(prefix="rd_engine_speed_")
    n_runs, k = len(settings) * a.repeats * 2, 0
    for rep in range(a.repeats):
        order = ("old", "new") if rep % 2 == 0 else ("new", "old")
        for batch, threads in settings:
            for name in order:
                k += 1
                out_dir = os.path.join(work, f"{name}_b{batch}_t{threads}_r{rep}")
                load = os.getloadavg()[0]
                ev, wall = train(builds[name], a.config, threads, batch, a.epochs, out_dir)
                secs = [e["train_seconds"] for e in ev]
                run = dict(build=name, batch=batch, threads=threads, repeat=rep, position=order.index(name),
                           epoch_seconds=secs, kept_seconds=secs[drop:], epoch1_loss=ev[0]["loss"],
                           losses=[e["loss"] for e in ev], steps=[e.get("steps") for e in ev],
                           targets=[e.get("targets") for e in ev], wall_seconds=wall, loadavg_1min_before=load)
                res["runs"].append(run)
                print(f"[{k}/{n_runs}] {name} batch {batch} threads {threads} repeat {rep}: "
                      f"{', '.join(f'{s:.3f}' for s in secs)} s/epoch, epoch-1 loss {ev[0]['loss']!r}",
                      flush=True)
    res["loadavg_end"] = list(os.getloadavg())

    # Summary per setting.
    rows, loss_rows = [], []
    for batch, threads in settings:
        sel = {n: [r for r in res["runs"] if r["build"] == n and r["batch"] == batch and r["threads"] == threads]
               for n in ("old", "new")}
        kept = {n: [s for r in sel[n] for s in r["kept_seconds"]] for n in sel}
        (mo, so), (mn, sn) = mean_sd(kept["old"]), mean_sd(kept["new"])
        ratio = mn / mo if mo > 0 else float("nan")
        # The fastest run of each build (mean of its kept epochs): robust to a machine that
        # switches between a fast and a slow state from run to run (seen on this VM with 2 threads).
        fo = min(statistics.mean(r["kept_seconds"]) for r in sel["old"])
        fn = min(statistics.mean(r["kept_seconds"]) for r in sel["new"])
        rows.append(dict(batch=batch, threads=threads, old_mean=mo, old_sd=so, new_mean=mn, new_sd=sn,
                         n_old=len(kept["old"]), n_new=len(kept["new"]), ratio=ratio,
                         within_5pct=abs(ratio - 1.0) <= 0.05, old_fastest=fo, new_fastest=fn,
                         fastest_ratio=fn / fo if fo > 0 else float("nan")))
        lo = [r["epoch1_loss"] for r in sel["old"]]
        ln = [r["epoch1_loss"] for r in sel["new"]]
        loss_rows.append(dict(batch=batch, threads=threads, old=lo, new=ln,
                              old_repeatable=len(set(lo)) == 1, new_repeatable=len(set(ln)) == 1,
                              identical=lo[0] == ln[0],
                              rel_diff=abs(ln[0] - lo[0]) / abs(lo[0]) if lo[0] else float("nan")))
    res["summary"] = rows
    res["epoch1_loss"] = loss_rows

    def pm(m, s):
        return f"{m:.3f} ± {s:.3f}" if s == s else f"{m:.3f}"

    kept_txt = (f"epochs 2..{a.epochs} of each run (epoch 1 dropped as warm-up)" if drop
                else f"all {a.epochs} epochs of each run (no warm-up dropped: fewer than 3 epochs)")
    md = [f"Training s/epoch, {kept_txt}; {a.repeats} repeat(s) per build, old and new interleaved; "
          f"mean ± sample sd over the kept epochs.", "",
          "| batch | threads | old s/epoch (mean ± sd) | new s/epoch (mean ± sd) | new/old ratio | within 5%? "
          "| old fastest run | new fastest run | ratio of fastest |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['batch']} | {r['threads']} | {pm(r['old_mean'], r['old_sd'])} | "
                  f"{pm(r['new_mean'], r['new_sd'])} | {r['ratio']:.3f} | {'yes' if r['within_5pct'] else 'no'} "
                  f"| {r['old_fastest']:.3f} | {r['new_fastest']:.3f} | {r['fastest_ratio']:.3f} |")
    md += ["", "Epoch-1 training loss (metrics.jsonl \"loss\"), full precision, first repeat; "
           "'repeatable' says whether every repeat of that build logged the same value.", "",
           "| batch | threads | old epoch-1 loss | new epoch-1 loss | identical? | relative diff | old repeatable | new repeatable |",
           "|---|---|---|---|---|---|---|---|"]
    for r in loss_rows:
        md.append(f"| {r['batch']} | {r['threads']} | {r['old'][0]!r} | {r['new'][0]!r} | "
                  f"{'yes' if r['identical'] else 'no'} | {r['rel_diff']:.3g} | "
                  f"{'yes' if r['old_repeatable'] else 'no'} | {'yes' if r['new_repeatable'] else 'no'} |")
    md += ["", f"old: `{builds['old']}` (sha256 {res['builds']['old']['sha256'][:12]})",
           f"new: `{builds['new']}` (sha256 {res['builds']['new']['sha256'][:12]})",
           f"load average (1 min) at start {load0[0]:.2f}, at end {res['loadavg_end'][0]:.2f}; {ncpu} CPUs; "
           f"{res['date']}"]
    text = "\n".join(md) + "\n"
    print()
    print(text, end="")

    out_dir = os.path.dirname(a.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    md_path = os.path.splitext(a.out)[0] + ".md"
    with open(md_path, "w") as f:
        f.write(text)
    print(f"written {a.out} and {md_path}")
    if a.keep_runs:
        print(f"run folders kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
