"""Speed benchmarks of recdistill against its peers, on an otherwise idle machine.

Runs, each as a separate process wrapped in /usr/bin/time (peak RSS):
  1. gemm_bench: the CPU backend's float GEMM (practical peak and SASRec's shapes);
  2. recdistill train, 3 epochs, for threads {1, 2} and batch {64, 256}: seconds per epoch,
     training targets per second, GFLOP/s of the epoch's matrix products;
  3. the PyTorch all-positions SASRec (bench/peers/torch_sasrec_allpos.py; same data windows,
     maths, optimiser), 3 epochs, threads {1, 2}, batch {64, 256};
  4. RecBole 1.2.1 SASRec (bench/peers/run_recbole.py --mode epochs), 3 epochs, 1 thread
     (and 2 threads with --recbole-threads 1 2).
The peers use OpenBLAS (Debian's torch calls the system BLAS; the default reference BLAS is
~4x slower) with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset so OpenBLAS picks its own kernel.

Usage: python3 bench/run_benchmarks.py --build build-release --out bench/results/speed.json
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, env=None, cwd=ROOT):
    """Runs cmd under /usr/bin/time; returns (stdout+stderr, peak RSS MiB, wall s)."""
    rss_file = "/tmp/rd_bench_rss.txt"
    t0 = time.time()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd, cwd=cwd, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.time() - t0
    if p.returncode != 0:
        print(p.stdout[-3000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    rss = int(open(rss_file).read().split()[-1]) / 1024
    return p.stdout, rss, wall


def peer_env(threads):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    env["LD_LIBRARY_PATH"] = "/usr/lib/x86_64-linux-gnu/openblas-pthread"
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def ours(build, threads, batch, epochs):
    out_dir = f"/tmp/rd_bench_runs/t{threads}_b{batch}"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    log, rss, _ = timed([f"{build}/apps/recdistill", "train", "--config",
                         "experiments/sasrec_ml100k.yaml", "--set", f"training.epochs={epochs}",
                         "--set", f"training.eval_every={epochs}", "--set", f"runtime.threads={threads}",
                         "--set", f"training.batch_size={batch}", "--output", out_dir], env=env)
    run = sorted(glob.glob(f"{out_dir}/run-*"))[-1]
    ep = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if '"event": "epoch"' in l]
    return dict(system="recdistill", threads=threads, batch=batch,
                seconds=[e["train_seconds"] for e in ep], targets=[e["targets"] for e in ep],
                gflop=[e["gflop"] for e in ep], max_rss_mb=rss)


def torch_peer(threads, batch, epochs):
    out = f"/tmp/rd_bench_torch_t{threads}_b{batch}.json"
    _, rss, _ = timed(["/usr/bin/python3", "bench/peers/torch_sasrec_allpos.py", "--threads", str(threads),
                       "--epochs", str(epochs), "--batch", str(batch), "--out", out], env=peer_env(threads))
    r = json.load(open(out))
    ep = r["epochs"]
    return dict(system="pytorch-allpos", threads=threads, batch=batch,
                seconds=[e["seconds"] for e in ep], targets=[e["targets"] for e in ep], max_rss_mb=rss,
                torch=r.get("torch_version"))


def recbole_peer(threads, epochs):
    out = f"/tmp/rd_bench_recbole_t{threads}.json"
    _, rss, _ = timed([".venv-recbole/bin/python", "bench/peers/run_recbole.py", "--mode", "epochs",
                       "--epochs", str(epochs), "--threads", str(threads), "--out", out],
                      env=peer_env(threads))
    r = json.load(open(out))
    return dict(system="recbole", threads=threads, batch=256, raw=r, max_rss_mb=rss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-release")
    ap.add_argument("--out", default="bench/results/speed.json")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--skip", nargs="*", default=[], help="gemm ours torch recbole")
    ap.add_argument("--recbole-threads", nargs="*", type=int, default=[1])
    a = ap.parse_args()
    res = dict(machine=subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()[:20],
               date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), runs=[])
    if "gemm" not in a.skip:
        log, _, _ = timed([f"{a.build}/bench/gemm_bench", "--benchmark_repetitions=3",
                           "--benchmark_report_aggregates_only=true", "--benchmark_format=json"],
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
        js = json.loads(log[log.index("{"):])
        res["gemm"] = [dict(name=b["name"], gflops=b["GFLOP/s"] / 1e9) for b in js["benchmarks"]
                       if b.get("aggregate_name") in ("mean", "stddev")]
        for b in res["gemm"]:
            print(f"gemm {b['name']}: {b['gflops']:.1f} GFLOP/s", flush=True)
    for threads in (1, 2):
        for batch in (64, 256):
            if "ours" not in a.skip:
                r = ours(a.build, threads, batch, a.epochs)
                res["runs"].append(r)
                print(r, flush=True)
            if "torch" not in a.skip:
                r = torch_peer(threads, batch, a.epochs)
                res["runs"].append(r)
                print(r, flush=True)
    if "recbole" not in a.skip:
        for t in a.recbole_threads:
            r = recbole_peer(t, a.epochs)
            res["runs"].append(r)
            print(json.dumps(r)[:2000], flush=True)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    json.dump(res, open(a.out, "w"), indent=1)
    print("written", a.out)


if __name__ == "__main__":
    main()
