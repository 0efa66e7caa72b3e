"""Summarises bench/e2e/run_seeds.sh output: per-seed rows and mean/std (sample std, n-1)."""
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
rows = []
for s in seeds:
    r = json.load(open(f"{out}/seed{s}.json"))
    try:
        rss = int(open(f"{out}/seed{s}.maxrss_kb").read().split()[-1])
    except (FileNotFoundError, IndexError, ValueError):  # not recorded (or the run was killed and resumed)
        rss = float("nan")
    rows.append(dict(seed=int(s), ndcg10=r["test"]["NDCG@10"], hr10=r["test"]["HR@10"],
                     mrr10=r["test"]["MRR@10"], valid_ndcg10=r["valid"]["NDCG@10"],
                     best_epoch=r["best_epoch"], epochs_run=r["epochs_run"],
                     train_s_to_best=r["train_seconds_to_best"], train_s=r["train_seconds"],
                     s_per_epoch=r["train_seconds"] / r["epochs_run"], max_rss_mb=rss / 1024))
print("| seed | test NDCG@10 | test HR@10 | test MRR@10 | valid NDCG@10 | best epoch | epochs run | train s to best | s/epoch | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['seed']} | {r['ndcg10']:.4f} | {r['hr10']:.4f} | {r['mrr10']:.4f} | {r['valid_ndcg10']:.4f} | "
          f"{r['best_epoch']} | {r['epochs_run']} | {r['train_s_to_best']:.1f} | {r['s_per_epoch']:.2f} | {r['max_rss_mb']:.0f} |")
def ms(k):
    v = [r[k] for r in rows if r[k] == r[k]]  # skip NaN (not recorded)
    if not v:
        return float("nan"), float("nan")
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)
print()
for k in ["ndcg10", "hr10", "mrr10", "best_epoch", "train_s_to_best", "s_per_epoch", "max_rss_mb"]:
    m, sd = ms(k)
    print(f"{k}: mean {m:.4f} std {sd:.4f}")
json.dump(rows, open(f"{out}/summary.json", "w"), indent=1)
