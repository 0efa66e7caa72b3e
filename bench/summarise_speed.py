"""Markdown tables from bench/run_benchmarks.py's JSON (mean ± sample std over epochs)."""
import json, statistics, sys
r = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "bench/results/speed.json"))
peak = max(g["gflops"] for g in r["gemm"] if g["name"].endswith("_mean"))
print(f"GEMM peak (best square mean): {peak:.1f} GFLOP/s\n")
print("| GEMM (M, N, K, transposes) | GFLOP/s mean | std |\n|---|---|---|")
g = {x["name"]: x["gflops"] for x in r["gemm"]}
for n, v in g.items():
    if n.endswith("_mean"):
        print(f"| {n[len('BM_Gemm/'):-len('_mean')]} | {v:.1f} | {g[n[:-5] + '_stddev']:.1f} |")
print("\n| system | threads | batch | s/epoch | targets/s | GFLOP/s | % of 1-core peak | peak RSS MB |\n|---|---|---|---|---|---|---|---|")
tps = {}
for x in r["runs"]:
    if x["system"] == "recbole":
        s = x["raw"]["seconds_per_epoch"]
        t = [x["raw"]["train_rows_per_epoch"]] * len(s)
    else:
        s, t = x["seconds"], x["targets"]
    rate = [ti / si for ti, si in zip(t, s)]
    m, sd = statistics.mean(s), statistics.stdev(s) if len(s) > 1 else 0
    tps[(x["system"], x["threads"], x["batch"])] = statistics.mean(rate)
    gf = f"{statistics.mean(x['gflop']) / m:.1f}" if "gflop" in x else "-"
    pct = f"{100 * statistics.mean(x['gflop']) / m / peak:.0f}%" if "gflop" in x else "-"
    print(f"| {x['system']} | {x['threads']} | {x['batch']} | {m:.3f} ± {sd:.3f} | {statistics.mean(rate):,.0f} | {gf} | {pct} | {x['max_rss_mb']:.0f} |")
print()
for (sy, th, b), v in sorted(tps.items()):
    if sy == "pytorch-allpos" and ("recdistill", th, b) in tps:
        print(f"recdistill / PyTorch all-positions, {th} thread(s), batch {b}: {tps[('recdistill', th, b)] / v:.2f}x targets/s")
