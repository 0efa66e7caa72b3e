"""SASRec weights between PyTorch and recdistill through safetensors files (docs/weights.md).

For each variant, with the reference PyTorch module of that variant:
  recbole  RecBole 1.2.1's own SASRec (recbole/model/sequential_recommender/sasrec.py), built
           with a tiny config; logits = full_sort_predict = seq_output @ item_embedding.weight.T
  pmixer   PmixerSASRec below: the `legacy` layout's module (pmixer/SASRec.pytorch
           python/model.py at 30c43cf, which the profile-distillation seed also uses), written
           from specs/backbones.md §2.3 with the reference's module names (item_emb, pos_emb,
           attention_layernorms, attention_layers = nn.MultiheadAttention, forward_layernorms,
           forward_layers = Conv1d pairs, last_layernorm); logits at slot L-1 (left padding).
           Its forward is checked here against tools/torch_sasrec.py's SASRecPmixer (the
           golden-fixture reference of our C++ model).
both directions are checked:
  (a) PyTorch -> ours: random weights, state_dict() saved with safetensors.torch.save_file,
      PyTorch's logits for fixed histories. Written under tests/fixtures/safetensors/<variant>/
      (model.safetensors, logits.npy, manifest.json), which the C++ test
      SASRecStateDict.*FileFromPyTorchGivesItsLogits reads in CI; here the C++ tool scores the
      same file and the difference is reported.
  (b) ours -> PyTorch: the C++ tool builds the model with our initialisation and writes
      model.safetensors and its logits; the file is loaded with load_state_dict(strict=True) and
      PyTorch's logits are compared.
It also writes tests/fixtures/safetensors/python_small.safetensors (the byte-compatibility file
of Safetensors.ReadsAndRewritesPythonFileByteForByte).

Setup (Debian 12; RecBole as in bench/peers/README.md, into a venv of /usr/bin/python3):
    apt-get install -y python3-torch python3-venv
    /usr/bin/python3 -m venv --system-site-packages .venv-st
    .venv-st/bin/pip install safetensors==0.4.5
    .venv-st/bin/pip install --no-deps recbole==1.2.1
    .venv-st/bin/pip install --no-deps scipy==1.10.1 pandas==1.5.3 pytz==2024.1 \\
        scikit-learn==1.2.2 joblib==1.3.2 threadpoolctl==3.2.0 tqdm==4.66.1 \\
        colorlog==4.7.2 colorama==0.4.4 texttable==1.7.0
    ninja -C build-st recdistill_sasrec_safetensors_tool
Run (from the repository root; prints the report, kept in docs/safetensors_interchange.txt):
    .venv-st/bin/python tools/safetensors_interchange.py --tool build-st/tests/recdistill_sasrec_safetensors_tool
--check-only leaves the committed fixtures as they are and checks them (direction (a)) as read.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import safetensors
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "safetensors")
sys.path.insert(0, HERE)
import torch_sasrec  # noqa: E402

TOL = 1e-5
SEED = 2024
# A tiny model: logits of order 1 (see random_weights) so that 1e-5 is a real check.
CFG = dict(n_items=20, max_len=5, hidden=8, layers=2, heads=2, inner=16)
# Item ids 1..19, oldest first; lengths 1..L, one repeated item.
HISTORIES = [[3, 7, 1], [5, 2, 5, 8, 19], [10], [4, 9, 12, 1], [18, 11]]


# ---- RecBole 1.2.1 ------------------------------------------------------------------------

def recbole_sasrec():
    """RecBole's SASRec class. RecBole imports torch.utils.tensorboard at import time; Debian's
    torch has no tensorboard package, so a stub is inserted (as bench/peers/run_recbole_sasrec.py)."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except Exception:
        tb = types.ModuleType("torch.utils.tensorboard")
        tb.SummaryWriter = type("SummaryWriter", (), {"__init__": lambda self, *a, **k: None})
        sys.modules["torch.utils.tensorboard"] = tb
    import recbole
    from recbole.model.sequential_recommender.sasrec import SASRec
    return SASRec, recbole.__version__


def build_recbole(cfg):
    SASRec, _ = recbole_sasrec()
    config = {  # what SequentialRecommender and SASRec read from RecBole's Config
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list",
        "ITEM_LIST_LENGTH_FIELD": "item_length", "NEG_PREFIX": "neg_",
        "MAX_ITEM_LIST_LENGTH": cfg["max_len"], "device": "cpu",
        "n_layers": cfg["layers"], "n_heads": cfg["heads"], "hidden_size": cfg["hidden"],
        "inner_size": cfg["inner"], "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5,
        "hidden_act": "gelu", "layer_norm_eps": 1e-12, "initializer_range": 0.02, "loss_type": "CE",
    }

    class Dataset:  # dataset.num(ITEM_ID) = number of item ids including the pad 0
        def num(self, field):
            assert field == "item_id"
            return cfg["n_items"]

    return SASRec(config, Dataset()).eval()


def recbole_logits(model, histories, L):
    seq = torch.zeros(len(histories), L, dtype=torch.long)  # right padding
    for b, h in enumerate(histories):
        seq[b, :len(h)] = torch.tensor(h)
    lens = torch.tensor([len(h) for h in histories])
    with torch.no_grad():  # full_sort_predict reads only these two fields of the interaction
        return model.full_sort_predict({"item_id_list": seq, "item_length": lens}).numpy()


# ---- pmixer (layout legacy) ---------------------------------------------------------------

class PointWiseFeedForward(nn.Module):
    def __init__(self, d, dropout):
        super().__init__()
        self.conv1 = nn.Conv1d(d, d, kernel_size=1)
        self.dropout1 = nn.Dropout(p=dropout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv1d(d, d, kernel_size=1)
        self.dropout2 = nn.Dropout(p=dropout)

    def forward(self, x):  # x [B, L, d]; Y + Dropout(conv2(ReLU(Dropout(conv1(Y)))))
        y = self.dropout2(self.conv2(self.relu(self.dropout1(self.conv1(x.transpose(-1, -2))))))
        return y.transpose(-1, -2) + x


class PmixerSASRec(nn.Module):
    """specs/backbones.md §2.3 `legacy`, with the reference module's attribute names."""

    def __init__(self, n_items, max_len, hidden, layers, heads, dropout=0.2):
        super().__init__()
        self.hidden = hidden
        self.item_emb = nn.Embedding(n_items, hidden, padding_idx=0)  # n_items = item_num + 1
        self.pos_emb = nn.Embedding(max_len, hidden)
        self.emb_dropout = nn.Dropout(dropout)
        self.attention_layernorms = nn.ModuleList()
        self.attention_layers = nn.ModuleList()
        self.forward_layernorms = nn.ModuleList()
        self.forward_layers = nn.ModuleList()
        self.last_layernorm = nn.LayerNorm(hidden, eps=1e-8)
        for _ in range(layers):
            self.attention_layernorms.append(nn.LayerNorm(hidden, eps=1e-8))
            self.attention_layers.append(nn.MultiheadAttention(hidden, heads, dropout=dropout))
            self.forward_layernorms.append(nn.LayerNorm(hidden, eps=1e-8))
            self.forward_layers.append(PointWiseFeedForward(hidden, dropout))

    def forward(self, seq):  # seq [B, L] left-padded; returns H [B, L, d]
        x = self.item_emb(seq) * self.hidden ** 0.5
        x = x + self.pos_emb(torch.arange(seq.shape[1]).unsqueeze(0).expand_as(seq))
        x = self.emb_dropout(x)
        keep = (seq != 0).unsqueeze(-1)
        x = x * keep
        L = seq.shape[1]
        causal = ~torch.tril(torch.ones(L, L, dtype=torch.bool))  # True = masked (j > i); no key padding
        for ln_a, mha, ln_f, ffn in zip(self.attention_layernorms, self.attention_layers,
                                        self.forward_layernorms, self.forward_layers):
            xt = x.transpose(0, 1)
            q = ln_a(xt)
            a, _ = mha(q, xt, xt, attn_mask=causal)
            x = (q + a).transpose(0, 1)  # residual from the normalised query
            x = ffn(ln_f(x)) * keep
        return self.last_layernorm(x)


def build_pmixer(cfg):
    return PmixerSASRec(cfg["n_items"], cfg["max_len"], cfg["hidden"], cfg["layers"], cfg["heads"]).eval()


def left_padded(histories, L):
    seq = torch.zeros(len(histories), L, dtype=torch.long)
    for b, h in enumerate(histories):
        seq[b, L - len(h):] = torch.tensor(h)
    return seq


def pmixer_logits(model, histories, L):
    with torch.no_grad():
        h = model(left_padded(histories, L))[:, -1, :]
        return (h @ model.item_emb.weight.t()).numpy()


def pmixer_vs_torch_sasrec(model, cfg, histories):
    """Max |logit difference| between PmixerSASRec and tools/torch_sasrec.py's SASRecPmixer with
    the same weights (names mapped, Conv1d kernels squeezed)."""
    ref = torch_sasrec.SASRecPmixer(cfg["n_items"], cfg["max_len"], d=cfg["hidden"], heads=cfg["heads"],
                                    layers=cfg["layers"], dropout=0.0).eval()
    sd = model.state_dict()
    ours = {"item_embedding": sd["item_emb.weight"], "position_embedding": sd["pos_emb.weight"],
            "last_ln.weight": sd["last_layernorm.weight"], "last_ln.bias": sd["last_layernorm.bias"]}
    for i in range(cfg["layers"]):
        p = f"layer{i}."
        for w in ("weight", "bias"):
            ours[p + "attn_ln." + w] = sd[f"attention_layernorms.{i}.{w}"]
            ours[p + "ffn_ln." + w] = sd[f"forward_layernorms.{i}.{w}"]
            ours[p + "attn.out_proj." + w] = sd[f"attention_layers.{i}.out_proj.{w}"]
            ours[p + "attn.in_proj_" + w] = sd[f"attention_layers.{i}.in_proj_{w}"]
            for c in ("conv1", "conv2"):
                t = sd[f"forward_layers.{i}.{c}.{w}"]
                ours[p + f"ffn.{c}.{w}"] = t.squeeze(-1) if w == "weight" else t
    ref.load_state_dict(ours, strict=True)
    with torch.no_grad():
        h = ref(left_padded(histories, cfg["max_len"]))[:, -1, :]
        want = (h @ ref.item_embedding.t()).numpy()
    return float(np.abs(pmixer_logits(model, histories, cfg["max_len"]) - want).max())


VARIANTS = {
    "recbole": dict(build=build_recbole, logits=recbole_logits, ln_eps=1e-12),
    "pmixer": dict(build=build_pmixer, logits=pmixer_logits, ln_eps=1e-8),
}


def random_weights(model, seed):
    """Weights drawn so that logits are of order 1 and no tensor keeps a default value (zero
    biases, unit LayerNorms would hide a misplaced tensor)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "layernorm" in name.lower() and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith("bias"):
                p.copy_(0.2 * noise)
            else:
                p.copy_(0.5 * noise)


# ---- the C++ tool -------------------------------------------------------------------------

def tool_request(variant, path):
    req = dict(CFG, variant=variant, ln_eps=VARIANTS[variant]["ln_eps"], init_range=0.5, seed=SEED,
               histories=HISTORIES)
    with open(path, "w") as f:
        json.dump(req, f)


def run_tool(tool, *args):
    r = subprocess.run([tool, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{tool} {' '.join(args)} failed:\n{r.stderr}")


def read_logits(path):
    with open(path) as f:
        return np.array(json.load(f)["logits"], dtype=np.float32)


# ---- the byte-compatibility file ----------------------------------------------------------

def write_python_small():
    """A few tensors of every kind (matrix, vector with extreme values, scalar, empty, non-ASCII
    name) and one metadata key (one key: Python's metadata map has no fixed order)."""
    tensors = {
        "a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.25 - 1.0,
        "b": torch.tensor([1.5, -2.0, 1e-30, 3e38], dtype=torch.float32),
        "scalar": torch.tensor(3.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "z.\u00fc": torch.tensor([[7.0]], dtype=torch.float32),
    }
    save_file(tensors, os.path.join(FIXTURES, "python_small.safetensors"), metadata={"format": "pt"})


# ---- the checks ---------------------------------------------------------------------------

def pytorch_to_ours(variant, tool, work, write):
    """(a): returns (max |difference|, max |logit|, extra lines)."""
    v = VARIANTS[variant]
    d = os.path.join(FIXTURES, variant)
    lines = []
    if write:
        torch.manual_seed(SEED)
        model = v["build"](CFG)
        random_weights(model, SEED + (1 if variant == "pmixer" else 0))
        if variant == "pmixer":
            with torch.no_grad():
                model.item_emb.weight[0].zero_()  # the reference's padding_idx row
        os.makedirs(d, exist_ok=True)
        sd = {k: t.contiguous() for k, t in model.state_dict().items()}
        save_file(sd, os.path.join(d, "model.safetensors"))
        logits = v["logits"](model, HISTORIES, CFG["max_len"]).astype(np.float32)
        np.save(os.path.join(d, "logits.npy"), logits)
        manifest = dict(CFG, variant=variant, ln_eps=v["ln_eps"], histories=HISTORIES,
                        generator="tools/safetensors_interchange.py", torch_version=torch.__version__,
                        safetensors_version=safetensors.__version__,
                        module="recbole.model.sequential_recommender.sasrec.SASRec (RecBole 1.2.1)"
                        if variant == "recbole" else "PmixerSASRec (tools/safetensors_interchange.py)")
        with open(os.path.join(d, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
        if variant == "pmixer":
            lines.append(f"pmixer module vs tools/torch_sasrec.py SASRecPmixer: max |diff| "
                         f"{pmixer_vs_torch_sasrec(model, CFG, HISTORIES):.2e}")
        if variant == "recbole":
            lines.append(f"RecBole SASRec buffers: {len(list(model.buffers()))}; state_dict keys "
                         f"{len(sd)} = parameters {len(list(model.parameters()))}")
    want = np.load(os.path.join(d, "logits.npy"))
    req = os.path.join(work, f"{variant}_request.json")
    tool_request(variant, req)
    out = os.path.join(work, f"{variant}_scored.json")
    run_tool(tool, "score", req, os.path.join(d, "model.safetensors"), out)
    got = read_logits(out)
    return float(np.abs(got - want).max()), float(np.abs(want).max()), lines


def ours_to_pytorch(variant, tool, work):
    """(b): returns (max |difference|, max |logit|, strict-load result)."""
    v = VARIANTS[variant]
    out = os.path.join(work, variant)
    os.makedirs(out, exist_ok=True)
    req = os.path.join(work, f"{variant}_request.json")
    tool_request(variant, req)
    run_tool(tool, "export", req, out)
    sd = load_file(os.path.join(out, "model.safetensors"))
    assert all(t.dtype == torch.float32 for t in sd.values())
    model = v["build"](CFG)
    res = model.load_state_dict(sd, strict=True)  # raises on a missing, unexpected or misshaped key
    for k, t in model.state_dict().items():
        assert torch.equal(t, sd[k]), k
    got = v["logits"](model, HISTORIES, CFG["max_len"])
    want = read_logits(os.path.join(out, "logits.json"))
    strict = f"load_state_dict(strict=True) OK ({len(sd)} tensors, missing {len(res.missing_keys)}, " \
             f"unexpected {len(res.unexpected_keys)})"
    return float(np.abs(got - want).max()), float(np.abs(want).max()), strict


def find_tool():
    for b in ("build-st", "build", "build-release", "build-test"):
        p = os.path.join(ROOT, b, "tests", "recdistill_sasrec_safetensors_tool")
        if os.path.exists(p):
            return p
    raise SystemExit("recdistill_sasrec_safetensors_tool not found: build it "
                     "(ninja -C build recdistill_sasrec_safetensors_tool) or pass --tool")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tool", help="path of recdistill_sasrec_safetensors_tool (default: found in build*/)")
    ap.add_argument("--check-only", action="store_true", help="do not rewrite tests/fixtures/safetensors/")
    args = ap.parse_args()
    tool = os.path.abspath(args.tool) if args.tool else find_tool()
    torch.set_num_threads(1)
    _, recbole_version = recbole_sasrec()
    print(f"safetensors interchange: torch {torch.__version__}, safetensors {safetensors.__version__}, "
          f"RecBole {recbole_version}")
    print(f"model: N={CFG['n_items']} L={CFG['max_len']} d={CFG['hidden']} layers={CFG['layers']} "
          f"heads={CFG['heads']} inner={CFG['inner']} (recbole); {len(HISTORIES)} histories; "
          f"logits = all N item columns at the last real item; tolerance {TOL:g}")
    if not args.check_only:
        os.makedirs(FIXTURES, exist_ok=True)
        write_python_small()
    ok = True
    with tempfile.TemporaryDirectory() as work:
        for variant in ("recbole", "pmixer"):
            diff, scale, lines = pytorch_to_ours(variant, tool, work, write=not args.check_only)
            ok &= diff <= TOL
            print(f"{variant:8s} PyTorch -> ours: max |logit diff| {diff:.2e} (max |logit| {scale:.2f})"
                  f"  {'OK' if diff <= TOL else 'FAIL'}")
            for line in lines:
                print(f"{'':8s}   {line}")
            diff, scale, strict = ours_to_pytorch(variant, tool, work)
            ok &= diff <= TOL
            print(f"{variant:8s} ours -> PyTorch: max |logit diff| {diff:.2e} (max |logit| {scale:.2f})"
                  f"  {'OK' if diff <= TOL else 'FAIL'}; {strict}")
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
