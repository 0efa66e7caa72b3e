"""RecBole 1.2.1 on this machine's Python stack: the compatibility monkeypatches, in one place.

Used by bench/peers/run_recbole.py, tools/check_sasrec_recbole.py, tools/make_bert4rec_fixtures.py
and tools/safetensors_interchange.py (scripts in tools/ put bench/peers on sys.path first).

    import recbole_compat
    recbole_compat.apply()          # then import from recbole as usual

Importing this module imports nothing but the standard library; numpy, torch and recbole are
imported by apply(). A script that re-execs itself to set up the process (run_recbole.py and
check_sasrec_recbole.py re-exec with LD_LIBRARY_PATH pointing at OpenBLAS, which the loader reads
only at start-up) calls apply() after that re-exec, i.e. after it has chosen its threads and BLAS.

What apply() does (site-packages is not edited):
  1. numpy>=1.24 removed the alias np.float, which recbole/evaluator/metrics.py uses (MRR, GAUC):
     we set np.float = float (and np.int / np.bool likewise), where they are missing.
  2. recbole/utils/utils.py imports torch.utils.tensorboard at import time, which needs the
     `tensorboard` package (not installed; Debian's torch does not ship it): we insert a stub
     module whose SummaryWriter does nothing. RecBole only writes scalars/hparams to it.
  3. torch.load: with torch>=2.6 the default weights_only=True breaks loading RecBole's
     checkpoints (they pickle the config); if torch.load accepts weights_only we default it to
     False. (No change on Debian's torch 1.13, whose default is already False.)
  4. Not a compatibility patch: RecBole 1.2.1's recbole/model/sequential_recommender/sine.py calls
     torch.autograd.set_detect_anomaly(True) at import time, so every RecBole model trains with
     autograd anomaly detection (an isnan().any() check on every backward output: a SASRec step
     takes ~1.6x as long on CPU). It does not change the numbers. apply() imports
     recbole.model.sequential_recommender (get_model would import it lazily, later) and then sets
     the mode to `anomaly_detection` (default False: off).
We never import recbole.quick_start (it imports `ray`, which is not installed).

apply() is idempotent: a second call re-sets only the anomaly-detection mode.
"""
import inspect
import sys
import types

_patched = False


class _NullSummaryWriter:
    """Stand-in for torch.utils.tensorboard.SummaryWriter: accepts every call, does nothing."""

    def __init__(self, *a, **k):
        pass

    def __getattr__(self, name):
        return lambda *a, **k: None


def _patch_numpy_aliases(np):
    for name, typ in (("float", float), ("int", int), ("bool", bool)):
        if name not in np.__dict__:
            setattr(np, name, typ)


def _stub_tensorboard(torch):
    try:
        import torch.utils.tensorboard  # noqa: F401
    except Exception:
        tb = types.ModuleType("torch.utils.tensorboard")
        tb.SummaryWriter = _NullSummaryWriter
        sys.modules["torch.utils.tensorboard"] = tb
        torch.utils.tensorboard = tb


def _default_weights_only_false(torch):
    if "weights_only" in inspect.signature(torch.load).parameters:
        orig_load = torch.load

        def load(*a, **k):
            k.setdefault("weights_only", False)
            return orig_load(*a, **k)

        torch.load = load


def apply(anomaly_detection=False):
    """Apply patches 1-3 (once), import recbole.model.sequential_recommender, and set autograd
    anomaly detection to `anomaly_detection` (4). Raises ImportError when recbole is missing."""
    global _patched
    import numpy as np
    import torch

    if not _patched:
        _patch_numpy_aliases(np)
        _stub_tensorboard(torch)
        _default_weights_only_false(torch)
        _patched = True
    import recbole.model.sequential_recommender  # noqa: F401  (sine.py turns anomaly detection on)

    torch.autograd.set_detect_anomaly(bool(anomaly_detection))
