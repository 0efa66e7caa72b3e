#!/usr/bin/env python3
"""RecBole 1.2.1 SASRec, BERT4Rec or FPMC on MovieLens-100K: the peers recdistill is compared with.

Run with the venv described in bench/peers/README.md (Debian's python3-torch + recbole==1.2.1).

Modes
  --mode epochs --epochs N   train N epochs without evaluation; report seconds per epoch
                             (only the training loop of each epoch is timed).
  --mode converge --seed S   full RecBole run: train, validate every epoch on NDCG@10,
                             early stopping (stopping_step from the config, 10), up to 200
                             epochs, then test HR/NDCG/MRR@5/10/20 with the best-validation
                             weights.
  --model SASRec|BERT4Rec|FPMC
                             which model (default SASRec); the config defaults to
                             recbole_sasrec.yaml / recbole_bert4rec.yaml / recbole_fpmc.yaml
                             beside this script.
  --resume-dir DIR           (converge) after every validated epoch, write DIR/latest.pth
                             (RecBole's checkpoint dict plus the RNG states), DIR/best.pth
                             (RecBole's best-validation checkpoint) and DIR/progress.json (the
                             per-epoch records so far). When DIR/latest.pth exists at start, the
                             run resumes from it with RecBole's Trainer.resume_checkpoint (a
                             resumed run continues the same early stopping; it is not
                             bit-identical to an uninterrupted one, since the data loader's
                             shuffle order is not part of the state).

The result JSON goes to --out (and is printed on stdout).

Compatibility monkeypatches (site-packages is not edited):
  1-3. np.float / np.int / np.bool aliases (numpy>=1.24), a stub torch.utils.tensorboard, and
     torch.load defaulting to weights_only=False (torch>=2.6): recbole_compat.apply() beside this
     script, whose docstring says what each is for. apply() also turns off the autograd anomaly
     detection that importing recbole.model turns on (unless --anomaly-detection).
  4. RecBole's Config maps dataset "ml-100k" to its bundled copy whatever data_path says: we
     set config["data_path"] = <--data-path>/ml-100k after building the Config.
  We also never import recbole.quick_start (it imports `ray`, which is not installed); the
  runner drives Config / create_dataset / data_preparation / Trainer itself, which is what
  recbole.quick_start.run_recbole does.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-pthread"  # Debian package libopenblas0-pthread


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["epochs", "converge"], required=True)
    p.add_argument("--epochs", type=int, default=3, help="epochs for --mode epochs")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--model", choices=["SASRec", "BERT4Rec", "FPMC"], default="SASRec")
    p.add_argument("--config", default=None,
                   help="RecBole YAML (default: recbole_<model>.yaml beside this script)")
    p.add_argument("--resume-dir", default=None,
                   help="(converge) keep resumable state here; resume from it when present")
    p.add_argument("--data-path", default=os.path.join(REPO, "data"),
                   help="folder holding ml-100k/ml-100k.{inter,item,user}")
    p.add_argument("--max-epochs", type=int, default=None,
                   help="override the config's epochs (200) in converge mode")
    p.add_argument("--workdir", default=os.path.join(REPO, "bench", "results", "tmp", "recbole"),
                   help="cwd for RecBole's log/ and checkpoint files (git-ignored)")
    p.add_argument("--out", default=None, help="path of the JSON result")
    p.add_argument("--anomaly-detection", action="store_true",
                   help="keep autograd anomaly detection on, as stock RecBole 1.2.1 leaves it "
                        "(importing recbole.model turns it on; by default we turn it off)")
    p.add_argument("--blas", choices=["openblas", "system"], default="openblas",
                   help="openblas (default): re-exec with LD_LIBRARY_PATH=%s so Debian's torch "
                        "(built against the generic libblas.so.3) uses OpenBLAS instead of the "
                        "netlib reference BLAS; system: whatever libblas.so.3 resolves to" % OPENBLAS_DIR)
    return p.parse_args()


args = parse_args()
if args.out:
    args.out = os.path.abspath(args.out)  # main() changes the cwd
if args.config is None:
    args.config = os.path.join(HERE, f"recbole_{args.model.lower()}.yaml")
args.config = os.path.abspath(args.config)
if args.resume_dir:
    args.resume_dir = os.path.abspath(args.resume_dir)
EXPECTED_PARAMS = {
    "SASRec": 211008,  # specs/backbones.md §2.1
    "BERT4Rec": 217043,  # §3.1
    # §4.1: (U + 3N)·d = (944 + 3·1683)·64 (943 users and 1,682 items, each + the pad id 0)
    "FPMC": 383552,
}
args.data_path = os.path.abspath(args.data_path)
args.workdir = os.path.abspath(args.workdir)

# Threads must be fixed before torch / numpy are imported.
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[var] = str(args.threads)

# Debian's python3-torch 1.13 is built with BLAS_INFO=generic: its sgemm comes from whatever
# libblas.so.3 the dynamic loader finds. Debian's default alternative is the netlib reference
# BLAS, which makes an ml-100k SASRec epoch ~3.6x slower (588 s vs 163 s per epoch, 1 thread, busy machine).
# The loader reads LD_LIBRARY_PATH only at start-up, hence the re-exec.
if args.blas == "openblas":
    if not os.path.exists(os.path.join(OPENBLAS_DIR, "libblas.so.3")):
        sys.exit(f"{OPENBLAS_DIR}/libblas.so.3 missing: apt-get install libopenblas0-pthread "
                 "(or pass --blas system)")
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

# Compatibility patches 1-3, and autograd anomaly detection off unless --anomaly-detection
# (recbole_compat.py, beside this script). Only after the re-exec above.
import recbole_compat  # noqa: E402

recbole_compat.apply(anomaly_detection=args.anomaly_detection)

from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.utils import get_model, get_trainer, init_logger, init_seed  # noqa: E402
from logging import getLogger  # noqa: E402


def loaded_blas():
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if "blas" in line.split()[-1]})
    return libs


def emit(result):
    text = json.dumps(result, indent=2)
    print(text, flush=True)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")


def main():
    os.makedirs(args.workdir, exist_ok=True)
    os.chdir(args.workdir)

    config_dict = {
        "data_path": os.path.abspath(args.data_path),
        "seed": args.seed,
        "checkpoint_dir": os.path.join(args.workdir, "saved"),
        "show_progress": False,
    }
    if args.mode == "converge" and args.max_epochs is not None:
        config_dict["epochs"] = args.max_epochs
    argv, sys.argv = sys.argv, sys.argv[:1]  # keep RecBole from parsing our command line
    config = Config(model=args.model, dataset="ml-100k",
                    config_file_list=[args.config], config_dict=config_dict)
    sys.argv = argv
    # monkeypatch 4: Config._set_default_parameters hard-codes dataset "ml-100k" to RecBole's
    # bundled copy (recbole/dataset_example/ml-100k), ignoring data_path. Point it at ours
    # (byte-identical ml-100k.inter/.item/.user, but this is the copy the brief names).
    config["data_path"] = os.path.join(args.data_path, "ml-100k")
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)

    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    logger.info(model)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"parameter count: {n_params} (spec: {EXPECTED_PARAMS[args.model]})", flush=True)

    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    torch.autograd.set_detect_anomaly(bool(args.anomaly_detection))

    train_rows = len(train_data.dataset)
    steps_per_epoch = len(train_data)
    common = {
        "peer": "RecBole 1.2.1",
        "model": args.model,
        "dataset": "ml-100k",
        "mode": args.mode,
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "parameter_count": n_params,
        "n_users": dataset.user_num - 1,
        "n_items": dataset.item_num - 1,
        "data_path": config["data_path"],
        "raw_interactions": sum(1 for _ in open(os.path.join(os.path.abspath(args.data_path), "ml-100k", "ml-100k.inter"))) - 1,
        "augmented_sequence_rows": dataset.inter_num,
        "train_rows_per_epoch": train_rows,
        "train_steps_per_epoch": steps_per_epoch,
        "train_batch_size": config["train_batch_size"],
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "numpy": np.__version__,
            "recbole": __import__("recbole").__version__,
        },
        "blas": loaded_blas(),
        "autograd_anomaly_detection": torch.is_anomaly_enabled(),
        "loadavg_at_start": list(os.getloadavg()),
    }
    print(f"train rows per epoch: {train_rows}, steps per epoch: {steps_per_epoch}", flush=True)

    if args.mode == "epochs":
        secs, losses = [], []
        for epoch_idx in range(args.epochs):
            t0 = time.perf_counter()
            loss = trainer._train_epoch(train_data, epoch_idx, show_progress=False)
            dt = time.perf_counter() - t0
            secs.append(dt)
            losses.append(float(loss))
            print(f"epoch {epoch_idx + 1}: train {dt:.3f}s loss {float(loss):.4f}", flush=True)
        common.update({
            "epochs": args.epochs,
            "seconds_per_epoch": secs,
            "mean_seconds_per_epoch": sum(secs) / len(secs),
            "train_loss_per_epoch": losses,
            "loadavg_at_end": list(os.getloadavg()),
        })
        emit(common)
        return

    # converge: RecBole's own Trainer.fit, with per-epoch timing captured by wrappers.
    epochs_log = []
    orig_train_epoch = trainer._train_epoch
    orig_valid_epoch = trainer._valid_epoch
    orig_save = trainer._save_checkpoint
    saved_epochs = []

    def train_epoch(train_data, epoch_idx, loss_func=None, show_progress=False):
        t0 = time.perf_counter()
        loss = orig_train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)
        dt = time.perf_counter() - t0
        epochs_log.append({"epoch": epoch_idx + 1, "train_seconds": dt, "train_loss": float(loss)})
        return loss

    def valid_epoch(valid_data, show_progress=False):
        t0 = time.perf_counter()
        score, result = orig_valid_epoch(valid_data, show_progress=show_progress)
        dt = time.perf_counter() - t0
        rec = epochs_log[-1]
        rec["valid_seconds"] = dt
        rec["valid"] = {k: float(v) for k, v in result.items()}
        print(f"epoch {rec['epoch']}: train {rec['train_seconds']:.3f}s loss {rec['train_loss']:.4f} "
              f"| valid {dt:.3f}s " + " ".join(f"{k}={float(v):.4f}" for k, v in result.items()),
              flush=True)
        return score, result

    def save_checkpoint(epoch, verbose=True, **kwargs):
        saved_epochs.append(epoch + 1)
        return orig_save(epoch, verbose=verbose, **kwargs)

    trainer._train_epoch = train_epoch
    trainer._valid_epoch = valid_epoch
    trainer._save_checkpoint = save_checkpoint

    callback = None
    resumed_from = None
    fit_seconds_before = 0.0
    if args.resume_dir:
        import random
        import shutil
        os.makedirs(args.resume_dir, exist_ok=True)
        latest = os.path.join(args.resume_dir, "latest.pth")
        best = os.path.join(args.resume_dir, "best.pth")
        progress = os.path.join(args.resume_dir, "progress.json")
        if os.path.exists(latest):
            with open(progress) as f:
                prog = json.load(f)
            trainer.resume_checkpoint(latest)  # start_epoch, cur_step, best score, weights, Adam
            state = torch.load(latest)
            torch.set_rng_state(state["rng_torch"])
            np.random.set_state(state["rng_numpy"])
            random.setstate(state["rng_python"])
            epochs_log.extend(prog["per_epoch"])
            saved_epochs.extend(prog["saved_epochs"])
            trainer.best_valid_result = prog["best_valid_result"]
            fit_seconds_before = prog["fit_seconds"]
            resumed_from = trainer.start_epoch
            print(f"resumed from {latest}: epoch {trainer.start_epoch + 1} next, "
                  f"cur_step {trainer.cur_step}, best {trainer.best_valid_score}", flush=True)
            # RecBole's best-validation checkpoint: a copy of best.pth (resume_checkpoint pointed
            # saved_model_file at latest.pth).
            trainer.saved_model_file = os.path.join(config["checkpoint_dir"], "best.pth")
            os.makedirs(config["checkpoint_dir"], exist_ok=True)
            shutil.copyfile(best, trainer.saved_model_file)
        t_start = time.perf_counter()

        def write_atomic(path, write):
            tmp = path + ".tmp"
            write(tmp)
            os.replace(tmp, path)

        def callback(epoch_idx, valid_score):
            # Called by fit after early stopping's bookkeeping and the best checkpoint's save.
            state = {
                "config": config, "epoch": epoch_idx, "cur_step": trainer.cur_step,
                "best_valid_score": trainer.best_valid_score, "state_dict": model.state_dict(),
                "other_parameter": model.other_parameter(), "optimizer": trainer.optimizer.state_dict(),
                "rng_torch": torch.get_rng_state(), "rng_numpy": np.random.get_state(),
                "rng_python": random.getstate(),
            }
            if os.path.exists(trainer.saved_model_file):
                write_atomic(best, lambda t: shutil.copyfile(trainer.saved_model_file, t))
            write_atomic(latest, lambda t: torch.save(state, t, pickle_protocol=4))
            prog = {"per_epoch": epochs_log, "saved_epochs": saved_epochs,
                    "best_valid_result": {k: float(v) for k, v in (trainer.best_valid_result or {}).items()},
                    "fit_seconds": fit_seconds_before + time.perf_counter() - t_start}

            def dump(t):
                with open(t, "w") as f:
                    json.dump(prog, f, indent=1)
            write_atomic(progress, dump)

    t_fit = time.perf_counter()
    best_valid_score, best_valid_result = trainer.fit(train_data, valid_data, saved=True, show_progress=False,
                                                      callback_fn=callback)
    fit_seconds = fit_seconds_before + time.perf_counter() - t_fit
    if best_valid_result is None and trainer.best_valid_result is not None:
        best_valid_result = trainer.best_valid_result
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    print("test: " + " ".join(f"{k}={float(v):.4f}" for k, v in test_result.items()), flush=True)

    train_secs = [e["train_seconds"] for e in epochs_log]
    common.update({
        "max_epochs": config["epochs"],
        "stopping_step": config["stopping_step"],
        "valid_metric": config["valid_metric"],
        "best_valid_ndcg@10": float(best_valid_score),
        "best_valid_result": {k: float(v) for k, v in best_valid_result.items()},
        "best_epoch": saved_epochs[-1] if saved_epochs else None,
        "epochs_run": len(epochs_log),
        "test": {k: float(v) for k, v in test_result.items()},
        "mean_seconds_per_train_epoch": sum(train_secs) / len(train_secs),
        "fit_seconds_total": fit_seconds,
        "per_epoch": epochs_log,
        "resumed_at_epoch": resumed_from,
        "loadavg_at_end": list(os.getloadavg()),
    })
    emit(common)


if __name__ == "__main__":
    main()
