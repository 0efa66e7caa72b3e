#!/usr/bin/env python3
"""Evaluates RecBole's own trained weights with both evaluators: RecBole's and `recdistill evaluate`.

Question it answers: when our model tests lower than RecBole's, is it the training or the
evaluation? Given a RecBole checkpoint (best.pth of bench/peers/run_recbole.py --resume-dir),
it
  1. rebuilds RecBole's dataset and split from bench/peers/recbole_<model>.yaml (as run_recbole.py
     does), loads the checkpoint into RecBole's module and runs RecBole's Trainer.evaluate on the
     valid and test splits;
  2. makes a run folder of ours for the same model (`recdistill train` with training.epochs=1,
     only to get the folder, its config and its metadata), replaces its model.safetensors with
     RecBole's state_dict, the item rows permuted from RecBole's ids to ours by item token (the
     BERT4Rec [mask] row stays last), and the checksum recomputed;
  3. runs `recdistill evaluate` on that folder and reports both evaluators' metrics side by side.
The variant is `recbole` (whose tensors carry RecBole's names, docs/weights.md); eval settings
are ours (full ranking, no filtering of seen items, like RecBole's sequential full sort).

Run with the RecBole venv (bench/peers/README.md), from the repository root:
    .venv-recbole/bin/python bench/peers/cross_evaluate.py --model BERT4Rec \\
        --checkpoint bench/results/recbole_resume/bert4rec_seed2020/best.pth --seed 2020 \\
        --out bench/results/cross_eval/bert4rec_seed2020.json
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))

OUR_CONFIG = {"SASRec": "experiments/sasrec_ml100k.yaml", "BERT4Rec": "experiments/bert4rec_ml100k.yaml"}
METRICS = ["hit@10", "ndcg@10", "mrr@10", "ndcg@5", "ndcg@20"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(OUR_CONFIG), required=True)
    p.add_argument("--checkpoint", required=True, help="RecBole checkpoint (best.pth)")
    p.add_argument("--seed", type=int, required=True, help="the seed of the RecBole run (its config)")
    p.add_argument("--app", default="build-test/apps/recdistill")
    p.add_argument("--data-path", default=os.path.join(REPO, "data"))
    p.add_argument("--out", required=True)
    return p.parse_args()


def recbole_side(args, work):
    import recbole_compat
    recbole_compat.apply()
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    cfg_file = os.path.join(HERE, f"recbole_{args.model.lower()}.yaml")
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole parses the command line otherwise
    config = Config(model=args.model, dataset="ml-100k", config_file_list=[cfg_file],
                    config_dict={"data_path": os.path.abspath(args.data_path), "seed": args.seed,
                                 "checkpoint_dir": os.path.join(work, "saved"), "show_progress": False,
                                 "metric_decimal_place": 6})  # RecBole rounds to 4 places by default
    sys.argv = argv
    config["data_path"] = os.path.join(os.path.abspath(args.data_path), "ml-100k")  # run_recbole.py's patch 4
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = get_model(config["model"])(config, train_data._dataset)
    ckpt = torch.load(args.checkpoint, map_location="cpu")
    model.load_state_dict(ckpt["state_dict"])
    model.load_other_parameter(ckpt.get("other_parameter"))
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    res = {}
    for split, data in (("valid", valid_data), ("test", test_data)):
        r = trainer.evaluate(data, load_best_model=False, show_progress=False)
        res[split] = {k: float(r[k]) for k in METRICS}
    ranks = recbole_test_ranks(trainer, test_data, dataset)
    seqs = recbole_test_sequences(test_data._dataset, dataset)
    tokens = list(dataset.field2id_token["item_id"])  # RecBole id -> token, "[PAD]" at 0
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    return res, tokens, sd, int(ckpt.get("epoch", -1)), ranks, seqs


def recbole_test_sequences(test_set, dataset):
    """{user token: [item tokens]}: each test case's context (RecBole keeps the last
    MAX_ITEM_LIST_LENGTH items) followed by its target, in RecBole's order."""
    f = test_set.inter_feat
    out = {}
    for u, ctx, n, tgt in zip(f["user_id"].tolist(), f["item_id_list"].tolist(), f["item_length"].tolist(),
                              f["item_id"].tolist()):
        out[str(dataset.id2token("user_id", u))] = [str(dataset.id2token("item_id", i)) for i in ctx[:n] + [tgt]]
    return out


def recbole_test_ranks(trainer, test_data, dataset):
    """{user token: (target token, rank, ties)}: rank = 1 + items scored strictly higher (the pad
    item scored -inf, as RecBole's full sort does); ties = other items with exactly its score."""
    import torch
    out = {}
    trainer.model.eval()
    with torch.no_grad():
        for batch in test_data:
            interaction, scores, _, positive_i = trainer._full_sort_batch_eval(batch)
            users = interaction["user_id"].tolist()
            for row, (u, i) in enumerate(zip(users, positive_i.tolist())):
                s = scores[row]
                out[str(dataset.id2token("user_id", u))] = (
                    str(dataset.id2token("item_id", i)), int((s > s[i]).sum()) + 1, int((s == s[i]).sum()) - 1)
    return out


def run(cmd):
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}{r.stdout}")
    return r.stdout + r.stderr


def our_side(args, work, rb_tokens, rb_sd):
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file
    from safetensors_interchange import tensors_fnv1a64, idmap_hash, app_histories

    out = os.path.join(work, "ours")
    run([args.app, "train", "--config", OUR_CONFIG[args.model], "--set", "training.epochs=1",
         "--set", "training.window_stride=0", "--set", f"seed={args.seed}", "--output", out])
    (run_dir,) = glob.glob(os.path.join(out, "run-*"))
    path = os.path.join(run_dir, "model.safetensors")
    with safe_open(path, "pt") as f:
        meta = dict(f.metadata())
        ours = {k: f.get_tensor(k) for k in f.keys()}
    import yaml
    _, our_tokens, our_seqs = app_histories(yaml.safe_load(meta["model_config"])["data"])
    if idmap_hash(our_tokens) != meta["item_mapping_hash"]:
        raise SystemExit("our item mapping was not rebuilt: item_mapping_hash differs")
    if sorted(our_tokens) != sorted(rb_tokens):
        raise SystemExit("RecBole's and our item sets differ")
    rb_id = {t: i for i, t in enumerate(rb_tokens)}
    perm = torch.tensor([rb_id[t] for t in our_tokens])  # our id -> RecBole id ("[PAD]" -> 0)
    n = len(our_tokens)
    new = {}
    for name, t in ours.items():
        if name not in rb_sd:
            raise SystemExit(f"{name}: not in RecBole's state_dict")
        src = rb_sd[name]
        if src.shape != t.shape:
            raise SystemExit(f"{name}: RecBole's shape {tuple(src.shape)}, ours {tuple(t.shape)}")
        if name in ("item_embedding.weight", "output_bias"):
            rows = torch.cat([perm, torch.arange(n, src.shape[0])])  # BERT4Rec's [mask] row stays last
            src = src[rows]
        new[name] = src.contiguous()
    extra = sorted(set(rb_sd) - set(ours))
    if extra:
        raise SystemExit(f"RecBole tensors with no place in ours: {extra}")
    save_file(new, path, metadata=meta)
    meta["tensors_fnv1a64"] = tensors_fnv1a64(path)
    save_file(new, path, metadata=meta)
    per_user = os.path.join(work, "per_user_test.csv")
    text = run([args.app, "evaluate", "--model-path", run_dir, "--output", os.path.join(work, "eval"),
                "--per-user", per_user])
    import csv
    with open(per_user) as f:
        our_ranks = {r["user"]: (r["target"], int(r["rank"])) for r in csv.DictReader(f)}
    with open(os.path.join(work, "eval", "evaluation.json")) as f:
        ev = json.load(f)
    names = {"hit@10": "HR@10", "ndcg@10": "NDCG@10", "mrr@10": "MRR@10", "ndcg@5": "NDCG@5", "ndcg@20": "NDCG@20"}
    res = {split: {k: ev[split].get(v) for k, v in names.items()} for split in ("valid", "test")}
    res["protocol"] = ev["protocol"]
    our_seqs = {u: [our_tokens[i] for i in seq] for u, seq in our_seqs.items()}
    return res, text, our_ranks, our_seqs


def main():
    args = parse_args()
    with tempfile.TemporaryDirectory() as work:
        rb, tokens, sd, epoch, rb_ranks, rb_seqs = recbole_side(args, work)
        ours, text, our_ranks, our_seqs = our_side(args, work, tokens, sd)
    # The data each evaluator sees: RecBole's test rows against the tails of our histories
    # (both order a user's interactions by timestamp; they differ only in how ties are ordered).
    tails = {u: our_seqs[u][-len(rb_seqs[u]):] for u in rb_seqs}
    order = {"users_whose_test_row_differs": sum(tails[u] != rb_seqs[u] for u in rb_seqs),
             "positions_that_differ": sum(a != b for u in rb_seqs for a, b in zip(tails[u], rb_seqs[u])),
             "positions": sum(len(v) for v in rb_seqs.values()),
             "test_targets_that_differ": sum(tails[u][-1] != rb_seqs[u][-1] for u in rb_seqs),
             "valid_targets_that_differ": sum(tails[u][-2] != rb_seqs[u][-2] for u in rb_seqs)}
    if set(rb_ranks) != set(our_ranks):
        raise SystemExit("the two evaluators' test users differ")
    differ = {u: {"recbole": rb_ranks[u], "ours": our_ranks[u]} for u in sorted(rb_ranks)
              if rb_ranks[u][:2] != our_ranks[u]}
    result = {"model": args.model, "checkpoint": args.checkpoint, "seed": args.seed,
              "checkpoint_epoch": epoch, "recbole_evaluator": rb, "recdistill_evaluate": ours,
              "sequence_order": order,
              "test_cases_that_differ_with_identical_rows": sorted(u for u in differ if tails[u] == rb_seqs[u]), "test_cases": len(rb_ranks), "test_cases_whose_target_or_rank_differ": differ,
              "test_cases_with_tied_scores_in_recbole": sum(1 for v in rb_ranks.values() if v[2] > 0),
              "recdistill_evaluate_output": text}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    for split in ("valid", "test"):
        for k in METRICS:
            print(f"{split} {k}: RecBole {rb[split][k]:.4f}  ours {ours[split][k]}")
    print(f"sequence order: {order}")
    print(f"test cases whose target or rank differ: {len(differ)} of {len(rb_ranks)}: {differ}")


if __name__ == "__main__":
    main()
