#!/usr/bin/env python3
"""RecBole 1.2.1's own STAMP on the shipped ALKDRec ML sessions (data/alkdrec-ml), shipped split.

The peer that recdistill's STAMP on data/alkdrec-ml is compared with, side by side. Run with the
venv of bench/peers/README.md (Debian's python3-torch + recbole==1.2.1, --no-deps):

    nice -n 10 .venv-recbole/bin/python bench/peers/recbole_sessions.py --seed 2024

What it does
  1. Writes data/alkdrec-ml/sessions.tsv as RecBole atomic benchmark files under
     <--workdir>/data/alkdrec-ml/ (never under data/alkdrec-ml/, which is read-only input):
     alkdrec-ml.{train,valid,test}.inter with columns
     session_id:token  item_id_list:token_seq  item_id:token   (tokens = shipped item_index),
     and alkdrec-ml.item (item_id:token, all 8,475 item_index values from items.tsv, so that
     RecBole's catalogue is complete: the windows alone hold 8,418 of them at L = 10).
     RecBole's benchmark mode (`benchmark_filename: [train, valid, test]`) loads the three files
     as the three splits, in file order, with no filtering and no re-split, so the split is the
     shipped one exactly. Each session is its own RecBole user (its session_id).
     - valid / test: one row per session: its last L items -> its `target` (2,465 each).
     - train (--train-rows prefixes, default): RecBole's usual sequential augmentation, done
       here because RecBole does NOT augment benchmark files (SequentialDataset skips
       data_augmentation when benchmark_filename is set; its own pre-processed session
       benchmarks ship the rows already augmented). For a train session with sequence
       s = items + [target], one row per k = 1..|s|-1: the last <= L items of s[:k] -> s[k];
       exactly what SequentialDataset.data_augmentation makes from one user's sequence
       (59,771 rows from 7,393 sessions). --train-rows last: one row per train session
       (its last L items -> target, 7,393 rows), ALKDRec's instances.
  2. Trains RecBole's STAMP (STAMP.yaml defaults: embedding_size 64, CE) with the overall settings
     of the other RecBole peers (bench/peers/recbole_stamp_alkdrec.yaml: Adam lr 1e-3, batch 256,
     <= 200 epochs, validation every epoch on NDCG@10, stopping_step 10, full ranking), through
     Config / create_dataset / data_preparation / Trainer.fit / Trainer.evaluate(load_best_model)
     as run_recbole.py does, and tests with the best-validation weights.
  3. Checks that the test split RecBole evaluates has exactly 2,465 cases, in order, whose session
     ids, windows and targets are the shipped ones (mapped back through RecBole's id tables), and
     prints the check; the run stops if it fails. Same for valid.
  4. Besides RecBole's own test metrics (`test`: no exclusion), recomputes the test metrics from
     the best model's full-ranking scores with the distinct window items excluded as ALKDRec's
     evaluation does (`test_window_excluded`: computed by this script, not by RecBole's
     evaluator, which cannot be configured to exclude them), and the unexcluded ones the same
     way as a cross-check of RecBole's numbers (`test_recomputed`).
  Result JSON: bench/results/recbole_stamp_alkdrec_seed<S>.json (--out to change).

Protocol differences (this peer vs. ALKDRec's protocol, specs/active-llm-distillation.md §1-§2,
§7, and vs. recdistill's STAMP runs on data/alkdrec-ml)
  - Model: RecBole's STAMP (specs/backbones.md §5.1: tanh MLPs, trilinear h_s*h_t, one shared
    item table, no attention mask, pads in the mean and attention, d = 64). ALKDRec's is the
    simplified STAMP (§5.2: two tables, masked attention, no MLPs, d = 100 teacher / 10 student).
    recdistill's `stamp.variant: recbole` is §5.1, `alkdrec_simplified` is §5.2.
  - Loss / schedule: full-softmax CE, epochs of shuffled batches of 256, Adam lr 1e-3, validation
    once per epoch on NDCG@10, stop after 11 epochs without improvement (`>=` ties keep the
    latest). ALKDRec: in-batch BPR, iterations of 1,024 distinct instances, validation every 20
    iterations on Recall@25, patience 21 (teacher) / 11 (student), <= 10,000 iterations.
  - Training rows: RecBole-style prefix augmentation (59,771 rows: every prefix of items+target
    of each train session, window L) by default. ALKDRec, and recdistill with
    `training.session_rows: last` (the default for the alkdrec variants): one row per train
    session (7,393). recdistill's `session_rows: prefixes` (the default for `variant: recbole`)
    is the same augmentation as here. `--train-rows last` gives ALKDRec's rows.
  - Window: the last L = 10 items (ALKDRec's window) by default; --max-len 50 (RecBole's default
    MAX_ITEM_LIST_LENGTH) keeps every input whole (inputs have 4-18 items). RecBole pads on the
    right (left-aligned, like ALKDRec); in benchmark mode the padded width is the longest list in
    the files (10 for L = 10, the same as RecBole's normal mode; 18 for L = 50, where RecBole's
    normal mode pads to 50). STAMP has no mask, so the pad count changes its numbers.
  - Padding: RecBole's pad id 0 is a dedicated [PAD] token (random, trained only through the CE
    logits, never ranked: RecBole sets its score to -inf), like recdistill's `reference` preset;
    upstream ALKDRec pads with item 0 (a real movie), which recdistill reproduces only with
    `legacy_pad_zero`.
  - Evaluation exclusion: RecBole ranks every item, window items included (`test`). ALKDRec
    excludes the distinct window items (and counts a target inside the window as a miss; no
    valid/test target of this data lies in its window). `test_window_excluded` is that reading,
    recomputed here from RecBole's model. Early stopping uses RecBole's unexcluded valid NDCG@10.
    The excluded items are the row's window: the last 10 items at L = 10 (ALKDRec's rule), the
    whole input at L = 50.
  - Ties: RecBole takes torch.topk of the scores (tie order unspecified); ALKDRec breaks ties by
    item index; recdistill's tables count ties against the model. The recomputed metrics here
    count only strictly higher scores (ties in the target's favour); float ties are rare.
  - Item ids: RecBole remaps tokens to its own ids (first-appearance order over the train, valid,
    test files, then the .item file), [PAD] = 0. The .item file makes the ranked set the full
    catalogue of 8,475 items, as in ALKDRec (7,580 occur in train sessions; the rest get only
    softmax-negative gradient).
    recdistill uses item_index + 1. Ids do not change the model, only initialisation order.
  - Metrics: Recall@K = HR@K (one target per case), NDCG@K with ideal DCG 1, mean over cases;
    same definitions as recdistill and spec §7 (not upstream's buggy NDCG).
  - Seeds: RecBole's init_seed(seed) (reproducibility: True); not the same random streams as
    recdistill's master seed, so only seed-averaged numbers are comparable.

Threads / BLAS: like run_recbole.py, it sets OMP/MKL/OPENBLAS/NUMEXPR_NUM_THREADS (--threads, 1)
and re-execs itself with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread, then applies
recbole_compat (numpy aliases, tensorboard stub, autograd anomaly detection off). No resume: a run
takes minutes.
"""
import argparse
import csv
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-pthread"  # Debian package libopenblas0-pthread
DATASET = "alkdrec-ml"
EXPECTED_SPLIT = {"train": 7393, "valid": 2465, "test": 2465}
EXPECTED_ITEMS = 8475
KS = (5, 10, 20)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--max-len", type=int, default=10,
                   help="window L: rows keep the last L inputs (MAX_ITEM_LIST_LENGTH; default 10, "
                        "ALKDRec's window; RecBole's default is 50)")
    p.add_argument("--train-rows", choices=["prefixes", "last"], default="prefixes",
                   help="prefixes (default): RecBole's sequential augmentation of each train session's "
                        "items + target; last: one row per train session (ALKDRec's instances)")
    p.add_argument("--sessions", default=os.path.join(REPO, "data", DATASET, "sessions.tsv"))
    p.add_argument("--config", default=os.path.join(HERE, "recbole_stamp_alkdrec.yaml"))
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--max-epochs", type=int, default=None, help="override the config's epochs (200)")
    p.add_argument("--workdir", default=None,
                   help="atomic files, RecBole's log/ and checkpoints (git-ignored; default "
                        "bench/results/tmp/recbole_stamp_alkdrec_L<L>_<rows>_seed<S>)")
    p.add_argument("--out", default=None,
                   help="result JSON (default bench/results/recbole_stamp_alkdrec_seed<S>.json for "
                        "L 10 / prefixes, else ..._L<L>_<rows>_seed<S>.json)")
    p.add_argument("--blas", choices=["openblas", "system"], default="openblas")
    return p.parse_args()


args = parse_args()
tag = "" if (args.max_len == 10 and args.train_rows == "prefixes") else f"_L{args.max_len}_{args.train_rows}"
if args.out is None:
    args.out = os.path.join(REPO, "bench", "results", f"recbole_stamp_alkdrec{tag}_seed{args.seed}.json")
if args.workdir is None:
    args.workdir = os.path.join(REPO, "bench", "results", "tmp",
                                f"recbole_stamp_alkdrec_L{args.max_len}_{args.train_rows}_seed{args.seed}")
args.out, args.workdir = os.path.abspath(args.out), os.path.abspath(args.workdir)
args.config, args.sessions = os.path.abspath(args.config), os.path.abspath(args.sessions)

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[var] = str(args.threads)
if args.blas == "openblas":
    if not os.path.exists(os.path.join(OPENBLAS_DIR, "libblas.so.3")):
        sys.exit(f"{OPENBLAS_DIR}/libblas.so.3 missing: apt-get install libopenblas0-pthread (or --blas system)")
    ld = os.environ.get("LD_LIBRARY_PATH", "")
    if OPENBLAS_DIR not in ld.split(":"):
        os.environ["LD_LIBRARY_PATH"] = OPENBLAS_DIR + (":" + ld if ld else "")
        os.execv(sys.executable, [sys.executable] + sys.argv)

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(args.threads)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass

sys.path.insert(0, HERE)
import recbole_compat  # noqa: E402

recbole_compat.apply(anomaly_detection=False)

from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.utils import get_model, get_trainer, init_logger, init_seed  # noqa: E402
from logging import getLogger  # noqa: E402


def read_items(path):
    with open(path, newline="") as f:
        items = [r["item_index"] for r in csv.DictReader(f, delimiter="\t")]
    if items != [str(i) for i in range(len(items))] or len(items) != EXPECTED_ITEMS:
        sys.exit(f"{path}: expected item_index 0..{EXPECTED_ITEMS - 1} in order")
    return items


def read_sessions(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out = {"train": [], "valid": [], "test": []}
    for r in rows:
        out[r["split"]].append((r["session_id"], r["items"].split(), r["target"]))
    counts = {k: len(v) for k, v in out.items()}
    if counts != EXPECTED_SPLIT:
        sys.exit(f"{path}: split counts {counts}, expected {EXPECTED_SPLIT}")
    return out


def write_atomic_files(sessions, items, folder, L, train_rows):
    """The RecBole benchmark files and the item file; returns the number of rows per file."""
    os.makedirs(folder, exist_ok=True)
    n = {}
    # alkdrec-ml.item: every item_index, so that RecBole's catalogue is the full 8,475 items (the
    # .inter files hold only the windows: items seen only before a valid/test window would be
    # missing from RecBole's id table, and never ranked).
    path = os.path.join(folder, f"{DATASET}.item")
    with open(path + ".tmp", "w") as f:
        f.write("item_id:token\n" + "".join(f"{i}\n" for i in items))
    os.replace(path + ".tmp", path)
    n["item"] = len(items)
    for split in ("train", "valid", "test"):
        path = os.path.join(folder, f"{DATASET}.{split}.inter")
        lines = ["session_id:token\titem_id_list:token_seq\titem_id:token"]
        for sid, items, target in sessions[split]:
            if split == "train" and train_rows == "prefixes":
                seq = items + [target]
                for k in range(1, len(seq)):
                    lines.append(f"{sid}\t{' '.join(seq[max(0, k - L):k])}\t{seq[k]}")
            else:
                lines.append(f"{sid}\t{' '.join(items[-L:])}\t{target}")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
        n[split] = len(lines) - 1
    return n


def check_split(name, split_data, dataset, shipped, L):
    """The cases RecBole's eval loader iterates (in its order) are the shipped sessions, in order."""
    sids, windows, targets = [], [], []
    for interaction, _, _, positive_i in split_data:
        sids.append(interaction["session_id"])
        targets.append(positive_i)
        seq, ln = interaction["item_id_list"], interaction["item_length"]
        windows.extend(row[:l].tolist() for row, l in zip(seq, ln.tolist()))
    sids = dataset.id2token("session_id", torch.cat(sids).numpy())
    targets = dataset.id2token("item_id", torch.cat(targets).numpy())
    tok = dataset.field2id_token["item_id"]
    windows = [[tok[i] for i in w] for w in windows]
    n = len(targets)
    ok_n = n == len(shipped)
    ok_sid = ok_n and all(a == b[0] for a, b in zip(sids, shipped))
    ok_win = ok_n and all(list(a) == b[1][-L:] for a, b in zip(windows, shipped))
    ok_tgt = ok_n and all(a == b[2] for a, b in zip(targets, shipped))
    line = (f"check {name}: RecBole evaluates {n} cases (shipped {len(shipped)}); session ids in order "
            f"{'match' if ok_sid else 'DIFFER'}; windows (last {L} items) {'match' if ok_win else 'DIFFER'}; "
            f"targets {'match' if ok_tgt else 'DIFFER'} the shipped targets")
    print(line, flush=True)
    return {"cases": n, "shipped": len(shipped), "session_ids_match": ok_sid, "windows_match": ok_win,
            "targets_match": ok_tgt, "ok": ok_n and ok_sid and ok_win and ok_tgt}


@torch.no_grad()
def recompute_metrics(model, split_data):
    """Full-ranking test metrics from the model's scores: as RecBole ranks (all items but [PAD]) and
    with the distinct window items excluded (ALKDRec, spec §7; a target in its window is a miss).
    Rank = number of items scoring strictly higher than the target."""
    model.eval()
    ranks_all, ranks_excl = [], []
    for interaction, _, _, positive_i in split_data:
        scores = model.full_sort_predict(interaction).view(len(positive_i), -1)
        scores[:, 0] = -np.inf
        tgt = scores.gather(1, positive_i.view(-1, 1))
        ranks_all.append((scores > tgt).sum(1))
        seq = interaction["item_id_list"]  # pads are 0, already -inf
        in_window = (seq == positive_i.view(-1, 1)).any(1)
        excl = scores.scatter(1, seq, -np.inf)
        r = (excl > tgt).sum(1)
        r[in_window] = 10 ** 9
        ranks_excl.append(r)

    def metrics(ranks):
        ranks = torch.cat(ranks).double()
        out = {}
        for k in KS:
            hit = ranks < k
            out[f"recall@{k}"] = hit.double().mean().item()
            out[f"ndcg@{k}"] = torch.where(hit, 1.0 / torch.log2(ranks + 2), torch.zeros_like(ranks)).mean().item()
        out["cases"] = int(ranks.numel())
        return out

    return metrics(ranks_all), metrics(ranks_excl)


def loaded_blas():
    with open("/proc/self/maps") as f:
        return sorted({line.split()[-1] for line in f if "blas" in line.split()[-1]})


def main():
    shipped = read_sessions(args.sessions)
    items = read_items(os.path.join(os.path.dirname(args.sessions), "items.tsv"))
    data_root = os.path.join(args.workdir, "data")
    rows = write_atomic_files(shipped, items, os.path.join(data_root, DATASET), args.max_len, args.train_rows)
    print(f"atomic files in {data_root}/{DATASET}: rows {rows}", flush=True)
    os.chdir(args.workdir)

    config_dict = {
        "data_path": data_root,
        "seed": args.seed,
        "MAX_ITEM_LIST_LENGTH": args.max_len,
        "checkpoint_dir": os.path.join(args.workdir, "saved"),
        "show_progress": False,
    }
    if args.max_epochs is not None:
        config_dict["epochs"] = args.max_epochs
    argv, sys.argv = sys.argv, sys.argv[:1]  # keep RecBole from parsing our command line
    config = Config(model="STAMP", dataset=DATASET, config_file_list=[args.config], config_dict=config_dict)
    sys.argv = argv
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)

    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    split_rows = {"train": len(train_data.dataset), "valid": len(valid_data.dataset), "test": len(test_data.dataset)}
    print(f"RecBole rows: {split_rows}; items {dataset.item_num - 1} (+[PAD]); "
          f"sessions (users) {dataset.user_num - 1}; padded width {dataset.field2seqlen['item_id_list']}", flush=True)
    if dataset.item_num - 1 != EXPECTED_ITEMS:
        sys.exit(f"RecBole knows {dataset.item_num - 1} items, expected {EXPECTED_ITEMS}")
    checks = {"valid": check_split("valid", valid_data, dataset, shipped["valid"], args.max_len),
              "test": check_split("test", test_data, dataset, shipped["test"], args.max_len)}
    if not all(c["ok"] for c in checks.values()):
        sys.exit("the split RecBole evaluates is not the shipped one")

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    logger.info(model)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"parameter count: {n_params}", flush=True)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    torch.autograd.set_detect_anomaly(False)

    epochs_log, saved_epochs = [], []
    orig_train, orig_valid, orig_save = trainer._train_epoch, trainer._valid_epoch, trainer._save_checkpoint

    def train_epoch(train_data, epoch_idx, loss_func=None, show_progress=False):
        t0 = time.perf_counter()
        loss = orig_train(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)
        epochs_log.append({"epoch": epoch_idx + 1, "train_seconds": time.perf_counter() - t0,
                           "train_loss": float(loss), "loadavg_1min": os.getloadavg()[0]})
        return loss

    def valid_epoch(valid_data, show_progress=False):
        t0 = time.perf_counter()
        score, result = orig_valid(valid_data, show_progress=show_progress)
        rec = epochs_log[-1]
        rec["valid_seconds"] = time.perf_counter() - t0
        rec["valid"] = {k: float(v) for k, v in result.items()}
        print(f"epoch {rec['epoch']}: train {rec['train_seconds']:.2f}s loss {rec['train_loss']:.4f} "
              f"(load {rec['loadavg_1min']:.2f}) | valid {rec['valid_seconds']:.2f}s "
              + " ".join(f"{k}={float(v):.4f}" for k, v in result.items() if k.startswith(("recall", "ndcg"))),
              flush=True)
        return score, result

    def save_checkpoint(epoch, verbose=True, **kwargs):
        saved_epochs.append(epoch + 1)
        return orig_save(epoch, verbose=verbose, **kwargs)

    trainer._train_epoch, trainer._valid_epoch, trainer._save_checkpoint = train_epoch, valid_epoch, save_checkpoint

    loadavg_start = list(os.getloadavg())
    t_fit = time.perf_counter()
    best_valid_score, best_valid_result = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    fit_seconds = time.perf_counter() - t_fit
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    print("test (RecBole): " + " ".join(f"{k}={float(v):.4f}" for k, v in test_result.items()), flush=True)
    test_all, test_excl = recompute_metrics(model, test_data)
    print("test (recomputed, no exclusion): " + " ".join(f"{k}={v:.4f}" for k, v in test_all.items() if k != "cases"))
    print("test (recomputed, window items excluded): "
          + " ".join(f"{k}={v:.4f}" for k, v in test_excl.items() if k != "cases"), flush=True)

    train_secs = [e["train_seconds"] for e in epochs_log]
    result = {
        "peer": "RecBole 1.2.1",
        "model": "STAMP",
        "dataset": "data/alkdrec-ml (shipped split, RecBole benchmark files)",
        "seed": args.seed,
        "max_item_list_length": args.max_len,
        "padded_width": int(dataset.field2seqlen["item_id_list"]),
        "train_rows_mode": args.train_rows,
        "rows": split_rows,
        "n_items": dataset.item_num - 1,
        "n_sessions": dataset.user_num - 1,
        "split_check": checks,
        "parameter_count": n_params,
        "config": {k: config[k] for k in ("embedding_size", "loss_type", "learning_rate", "train_batch_size",
                                          "eval_batch_size", "epochs", "stopping_step", "valid_metric",
                                          "metrics", "topk", "reproducibility")},
        "train_steps_per_epoch": len(train_data),
        "threads": torch.get_num_threads(),
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
                     "recbole": __import__("recbole").__version__},
        "blas": loaded_blas(),
        "autograd_anomaly_detection": torch.is_anomaly_enabled(),
        "valid_metric": config["valid_metric"],
        "best_valid_score": float(best_valid_score),
        "best_valid_result": {k: float(v) for k, v in best_valid_result.items()},
        "best_epoch": saved_epochs[-1] if saved_epochs else None,
        "epochs_run": len(epochs_log),
        "test": {k: float(v) for k, v in test_result.items()},
        "test_recomputed": test_all,
        "test_window_excluded": test_excl,
        "mean_seconds_per_train_epoch": sum(train_secs) / len(train_secs),
        "median_seconds_per_train_epoch": float(np.median(train_secs)),
        "mean_seconds_per_valid_epoch": sum(e["valid_seconds"] for e in epochs_log) / len(epochs_log),
        "fit_seconds_total": fit_seconds,
        "loadavg_at_start": loadavg_start,
        "loadavg_at_end": list(os.getloadavg()),
        "per_epoch": epochs_log,
    }
    text = json.dumps(result, indent=2)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".tmp", "w") as f:
        f.write(text + "\n")
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
