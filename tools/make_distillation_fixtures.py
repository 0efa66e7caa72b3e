"""Golden fixtures of profile distillation on SASRec (the seed's `pmixer` model), written from
specs/profile-distillation.md in PyTorch (an independent reference, not the C++ code's port):

    tests/fixtures/distill_sasrec_attention_down_mse/   tap at block 1 (the last block, before the
        final LN), learned attention aggregator, projection `down`, MSE, alpha 0.4, beta on
    tests/fixtures/distill_sasrec_exp_up_cosine/        tap -1 (the final output), exp_weight
        gamma 0.3, projection `up`, cosine, alpha 0.6, beta off

and on BERT4Rec `hf` (tools/torch_bert4rec.py's model, the seed's; cloze batch with fixed masks):

    tests/fixtures/distill_bert4rec_mean_down_mse/      tap -1 (the last encoder layer), masked mean,
        projection `down`, MSE, alpha 0.4, beta on
    tests/fixtures/distill_bert4rec_layer1_exp_up_rmse/ tap 1 (layer 1 of 2, 1-based: the first
        layer's output), exp_weight gamma 0.3, projection `up`, RMSE, alpha 0.6, beta off
    tests/fixtures/distill_bert4rec_emb_last_none_cosine/ tap 0 (the embedding output), last_item,
        projection `none` (D = d), cosine, alpha 0.5, beta on

Each holds, in float64 with dropout off: the batch, the users' profiles, every parameter, the
forward (tapped tensor, aggregate, target, prediction), L_rec, L_distil, beta and the total,
the gradient of every parameter under alpha * beta * dL_distil + (1 - alpha) * dL_rec with beta
a constant, and the parameters after 3 AdamW steps (weight decay 0.01, clip 0.5, as the seed)
whose third is in the fine-tuning phase: L_rec alone, the head's tensors without a gradient
(AdamW skips them: no step, no decay) and left out of the clipping norm. The BERT4Rec fixtures
take 4 steps, the last 2 in the fine-tuning phase (step4.*; the head's tensors there equal
step2.*, which they also hold), with the cloze masks fixed inputs of the fixture (seq, target).

Regenerate (from the repository root):  /usr/bin/python3 tools/make_distillation_fixtures.py
with the system's default BLAS: forcing another one (e.g. LD_LIBRARY_PATH=.../openblas-pthread)
changes the last bits of the SASRec fixtures. Deterministic: running it twice gives identical files.
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from torch_sasrec import build_sasrec, all_logits, ce_all_positions, expected_param_names  # noqa: E402
from make_fixtures import FULL_SEQS, init_params, save_npy, make_batch, N, L, D as DMODEL, HEADS, LAYERS  # noqa: E402

FIXTURE_FORMAT_VERSION = 1
SEED = 4321
PROFILE_D = 5
HAS_PROFILE = [1, 0, 1]  # row 1's user has no profile
LR, WD, CLIP = 0.01, 0.01, 0.5

CONFIGS = {
    "distill_sasrec_attention_down_mse": dict(tap=1, agg="attention", gamma=None, projection="down",
                                              loss="MSE", alpha=0.4, beta=True),
    "distill_sasrec_exp_up_cosine": dict(tap=-1, agg="exp_weight", gamma=0.3, projection="up",
                                         loss="cosine", alpha=0.6, beta=False),
}


def forward_with_taps(model, seq):
    """The pmixer forward of torch_sasrec, keeping each block's output (after its pad zeroing,
    before the final LN)."""
    B, Ln = seq.shape
    pos = torch.arange(Ln)
    x = F.embedding(seq, model.item_embedding, padding_idx=0) * (model.d ** 0.5)
    x = x + F.embedding(pos, model.position_embedding)
    x = model.emb_drop(x)
    m = (seq != 0).unsqueeze(-1).to(x.dtype)
    x = x * m
    causal = ~torch.tril(torch.ones(Ln, Ln, dtype=torch.bool))
    blocks = []
    for l in range(model.layers):
        x = getattr(model, f"layer{l}")(x, m, causal)
        blocks.append(x)
    return model.last_ln(x), blocks


class Head(nn.Module):
    """Aggregate, projection T and the reconstruction loss (spec §3-§5), masked (library default)."""

    def __init__(self, cfg, d, D):
        super().__init__()
        self.cfg = cfg
        if cfg["agg"] == "attention":
            self.aggregator = nn.Linear(d, 1)
        if cfg["projection"] == "down":
            self.profile_transform = nn.Linear(D, d)
        if cfg["projection"] == "up":
            self.hidden_upscale = nn.Linear(d, D)

    def aggregate(self, h, real):
        B, Ln, d = h.shape
        if self.cfg["agg"] == "mean":  # H = sum_t m_t h_t / n
            m = real.to(h.dtype).unsqueeze(-1)
            n = m.sum(1)
            return torch.where(n > 0, (m * h).sum(1) / n.clamp_min(1), torch.zeros_like(h[:, 0]))
        if self.cfg["agg"] == "last_item":  # H = h_{L-1} (0 if that slot is not real)
            return h[:, Ln - 1] * real[:, Ln - 1].to(h.dtype).unsqueeze(-1)
        if self.cfg["agg"] == "attention":
            s = self.aggregator(h).squeeze(-1)
        else:  # exp_weight: -gamma * recency; the newest real item (slot L-1, left padding) has recency 0
            recency = torch.arange(Ln - 1, -1, -1, dtype=h.dtype)
            s = (-self.cfg["gamma"] * recency).expand(B, Ln)
        s = s.masked_fill(~real, float("-inf"))
        w = torch.softmax(s, dim=1)
        w = torch.nan_to_num(w, nan=0.0)  # a row without a real slot aggregates to 0
        return (w.unsqueeze(-1) * h).sum(1)

    def forward(self, h, real, e, has):
        H = self.aggregate(h, real)
        y = self.profile_transform(e) if self.cfg["projection"] == "down" else e
        p = self.hidden_upscale(H) if self.cfg["projection"] == "up" else H
        usable = has & real.any(1)
        pu, yu = p[usable], y[usable]
        if self.cfg["loss"] == "MSE":
            loss = ((pu - yu) ** 2).mean()
        elif self.cfg["loss"] == "RMSE":
            loss = ((pu - yu) ** 2).mean().sqrt()
        else:
            eps = 1e-6
            c = (pu * yu).sum(1) / (pu.norm(dim=1).clamp_min(eps) * yu.norm(dim=1).clamp_min(eps))
            loss = 1 - c.mean()
        return loss, H, y, p


def total_loss(model, head, cfg, seq, tgt, e, has, distil=True):
    hidden, blocks = forward_with_taps(model, seq)
    l_rec = ce_all_positions(all_logits(model, hidden), tgt)
    if not distil:
        return l_rec, l_rec, None, None, None
    tap = hidden if cfg["tap"] == -1 else blocks[cfg["tap"]]
    l_d, H, y, p = head(tap, seq != 0, e, has)
    beta = (l_rec.item() / (l_d.item() + 1e-8)) if cfg["beta"] else 1.0  # a constant
    return cfg["alpha"] * beta * l_d + (1 - cfg["alpha"]) * l_rec, l_rec, l_d, beta, (tap, H, y, p)


def generate(name, cfg, out_dir):
    torch.manual_seed(SEED)
    model = build_sasrec("pmixer", N, L, DMODEL, HEADS, LAYERS, inner=DMODEL, dropout=0.0, ln_eps=1e-8).double()
    init_params(model, "pmixer")
    head = Head(cfg, DMODEL, PROFILE_D).double()
    with torch.no_grad():
        for n, p in head.named_parameters():
            p.copy_((0.1 if n.endswith("bias") else 0.3) * torch.randn(p.shape, dtype=torch.float64))
    model.train()
    head.train()
    seq, tgt = make_batch("pmixer")
    # Profiles are float32 in the library's table (as loaded from files): exactly representable values.
    e = torch.randn(len(FULL_SEQS), PROFILE_D, dtype=torch.float64).float().double()
    has = torch.tensor(HAS_PROFILE, dtype=torch.bool)
    with torch.no_grad():
        e[~has] = 0.0
    names = expected_param_names("pmixer", LAYERS)
    params = dict(model.named_parameters())
    head_names = [n for n, _ in head.named_parameters()]
    all_params = {**params, **dict(head.named_parameters())}
    order = names + head_names

    os.makedirs(out_dir, exist_ok=True)
    for fn in os.listdir(out_dir):
        if fn.endswith(".npy") or fn == "manifest.json":
            os.remove(os.path.join(out_dir, fn))
    arrays = {}

    def put(stem, arr):
        arrays[stem] = save_npy(os.path.join(out_dir, stem + ".npy"), arr)

    put("seq", seq.numpy())
    put("target", tgt.numpy())
    put("profiles", e.numpy())
    put("has_profile", np.array(HAS_PROFILE, dtype=np.int64))
    for n in order:
        put("param." + n, all_params[n].detach().numpy())

    for p in all_params.values():
        p.grad = None
    total, l_rec, l_d, beta, (tap, H, y, p) = total_loss(model, head, cfg, seq, tgt, e, has)
    total.backward()
    put("tap", tap.detach().numpy())
    put("aggregate", H.detach().numpy())
    put("target_y", y.detach().numpy())
    put("prediction", p.detach().numpy())
    put("losses", np.array([total.item(), l_rec.item(), l_d.item(), beta], dtype=np.float64))
    for n in order:
        g = all_params[n].grad
        put("grad." + n, (torch.zeros_like(all_params[n]) if g is None else g).detach().numpy())

    # 3 AdamW steps; the third in the fine-tuning phase (L_rec only: the head gets no gradient).
    opt = torch.optim.AdamW([all_params[n] for n in order], lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=WD)
    step_losses = []
    for s in range(3):
        opt.zero_grad(set_to_none=True)
        distil = s < 2
        loss = total_loss(model, head, cfg, seq, tgt, e, has, distil=distil)[0]
        step_losses.append(loss.item())
        loss.backward()
        torch.nn.utils.clip_grad_norm_([all_params[n] for n in order], CLIP)
        opt.step()
    assert step_losses[0] == total.item()
    put("step_losses", np.array(step_losses, dtype=np.float64))
    for n in order:
        put("step3." + n, all_params[n].detach().numpy())

    manifest = {
        "format_version": FIXTURE_FORMAT_VERSION,
        "generator": "tools/make_distillation_fixtures.py",
        "torch_version": torch.__version__,
        "config": {
            "N": N, "L": L, "d": DMODEL, "heads": HEADS, "layers": LAYERS, "inner": DMODEL, "ln_eps": 1e-8,
            "batch": int(seq.shape[0]), "D": PROFILE_D, "tap": cfg["tap"], "aggregator": cfg["agg"],
            "gamma": cfg["gamma"], "projection": cfg["projection"], "loss": cfg["loss"], "alpha": cfg["alpha"],
            "beta": cfg["beta"], "lr": LR, "weight_decay": WD, "clip": CLIP, "fine_tune_step": 3,
        },
        "params": order,
        "head_params": head_names,
        "arrays": arrays,
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"{name}: total {total.item():.12g} rec {l_rec.item():.12g} distil {l_d.item():.12g} beta {beta:.6g} "
          f"steps {[round(x, 10) for x in step_losses]} -> {os.path.relpath(out_dir, ROOT)}")

# ----------------------------------------------------------------------------------------------
# BERT4Rec `hf` (tools/torch_bert4rec.py, as tools/make_bert4rec_fixtures.py builds it)
# ----------------------------------------------------------------------------------------------

B4R_SEED = 2468
B4R_N, B4R_L, B4R_D, B4R_HEADS, B4R_LAYERS = 11, 6, 8, 2, 2  # item ids 1..10, [MASK] = N = 11
B4R_STEPS, B4R_FINE_TUNE_STEP = 4, 3  # steps 1-2 distil, 3-4 fine-tune (1-based)
# Training windows (oldest first; left-padded to L) and the 0-based positions within each window
# that become [MASK] (fixed, not drawn): row 0 fills the window; row 1 repeats item 5; row 3 is
# entirely [MASK] (masked slots still count as real, spec §3); row 2's user has no profile.
B4R_ROWS = [
    [3, 7, 1, 9, 4, 10],
    [5, 2, 5, 8],
    [10, 1, 5],
    [6, 2],
]
B4R_MASKED = [
    [1, 3, 5],
    [0, 2],
    [2],
    [0, 1],
]
B4R_HAS_PROFILE = [1, 1, 0, 1]

B4R_CONFIGS = {
    "distill_bert4rec_mean_down_mse": dict(tap=-1, agg="mean", gamma=None, projection="down", loss="MSE",
                                           alpha=0.4, beta=True, D=5),
    "distill_bert4rec_layer1_exp_up_rmse": dict(tap=1, agg="exp_weight", gamma=0.3, projection="up", loss="RMSE",
                                                alpha=0.6, beta=False, D=5),
    "distill_bert4rec_emb_last_none_cosine": dict(tap=0, agg="last_item", gamma=None, projection="none",
                                                  loss="cosine", alpha=0.5, beta=True, D=B4R_D),
}


def bert4rec_states(model, seq, attn_valid):
    """BERT4RecHf's forward keeping HuggingFace's hidden-state list: entry 0 the embedding output
    (after LN_in and dropout), entry j the output of layer j (1-based); entry -1 is forward()'s."""
    B, Ln = seq.shape
    x = F.embedding(seq, model.item_embedding, padding_idx=0) + model.token_type_embedding[0]
    x = x + F.embedding(torch.arange(Ln), model.position_embedding)
    x = model.in_drop(model.ln_in(x))
    mask = model.attention_mask(attn_valid)
    states = [x]
    for l in range(model.layers):
        x = getattr(model, f"layer{l}")(x, mask)
        states.append(x)
    return states


def bert4rec_total_loss(model, head, cfg, seq, attn_valid, tgt, real, e, has, cloze_ce, distil=True):
    states = bert4rec_states(model, seq, attn_valid)
    l_rec = cloze_ce(model.logits(states[-1]), tgt)
    if not distil:
        return l_rec, l_rec, None, None, None, states
    tap = states[cfg["tap"]]
    l_d, H, y, p = head(tap, real, e, has)
    beta = (l_rec.item() / (l_d.item() + 1e-8)) if cfg["beta"] else 1.0  # a constant
    return cfg["alpha"] * beta * l_d + (1 - cfg["alpha"]) * l_rec, l_rec, l_d, beta, (tap, H, y, p), states


def generate_bert4rec(name, cfg, out_dir):
    from torch_bert4rec import BERT4RecHf, cloze_ce, expected_param_names as b4r_param_names
    from make_bert4rec_fixtures import draw_params

    N, Ln, d, D = B4R_N, B4R_L, B4R_D, cfg["D"]
    torch.manual_seed(B4R_SEED)
    model = BERT4RecHf(N, Ln, d, B4R_HEADS, B4R_LAYERS, inner=4 * d, hidden_dropout=0.0, attn_dropout=0.0,
                       ln_eps=1e-12).double()
    names = b4r_param_names("hf", B4R_LAYERS)
    params = dict(model.named_parameters())
    assert list(params) == names
    drawn = draw_params({n: tuple(params[n].shape) for n in names})
    drawn["item_embedding"][0].zero_()  # pad row zero (hf)
    with torch.no_grad():
        for n in names:
            params[n].copy_(drawn[n])
    head = Head(cfg, d, D).double()
    with torch.no_grad():
        for n, p in head.named_parameters():
            p.copy_((0.1 if n.endswith("bias") else 0.3) * torch.randn(p.shape, dtype=torch.float64))
    model.train()  # dropout p = 0
    head.train()

    # The cloze batch: left-padded windows, [MASK] at the fixed slots, targets there.
    Bn = len(B4R_ROWS)
    orig = torch.zeros(Bn, Ln, dtype=torch.long)
    seq = torch.zeros(Bn, Ln, dtype=torch.long)
    tgt = torch.zeros(Bn, Ln, dtype=torch.long)
    for b, (row, masked) in enumerate(zip(B4R_ROWS, B4R_MASKED)):
        off = Ln - len(row)
        orig[b, off:] = torch.tensor(row)
        seq[b] = orig[b]
        for j in masked:
            seq[b, off + j] = N
            tgt[b, off + j] = row[j]
    attn_valid = (orig != 0).long()  # `dataset` mask; without masked pads it equals seq != 0
    assert torch.equal(attn_valid, (seq != 0).long())
    real = orig != 0  # spec §3: the non-pad slots of the original window ([MASK] slots included)
    lengths = np.array([len(r) for r in B4R_ROWS], dtype=np.int64)
    # Profiles are float32 in the library's table: exactly representable values.
    e = torch.randn(Bn, D, dtype=torch.float64).float().double()
    has = torch.tensor(B4R_HAS_PROFILE, dtype=torch.bool)
    with torch.no_grad():
        e[~has] = 0.0

    head_names = [n for n, _ in head.named_parameters()]
    all_params = {**params, **dict(head.named_parameters())}
    order = names + head_names

    os.makedirs(out_dir, exist_ok=True)
    for fn in os.listdir(out_dir):
        if fn.endswith(".npy") or fn == "manifest.json":
            os.remove(os.path.join(out_dir, fn))
    arrays = {}

    def put(stem, arr):
        arrays[stem] = save_npy(os.path.join(out_dir, stem + ".npy"), arr)

    put("seq", seq.numpy())
    put("target", tgt.numpy())
    put("lengths", lengths)
    put("profiles", e.numpy())
    put("has_profile", np.array(B4R_HAS_PROFILE, dtype=np.int64))
    for n in order:
        put("param." + n, all_params[n].detach().numpy())

    args = (model, head, cfg, seq, attn_valid, tgt, real, e, has, cloze_ce)
    for p in all_params.values():
        p.grad = None
    total, l_rec, l_d, beta, (tap, H, y, p), states = bert4rec_total_loss(*args)
    with torch.no_grad():  # the reused model's own forward gives the same last state
        assert torch.equal(states[-1], model(seq, attn_valid))
    total.backward()
    put("tap", tap.detach().numpy())
    put("hidden", states[-1].detach().numpy())
    put("aggregate", H.detach().numpy())
    put("target_y", y.detach().numpy())
    put("prediction", p.detach().numpy())
    put("losses", np.array([total.item(), l_rec.item(), l_d.item(), beta], dtype=np.float64))
    for n in order:
        g = all_params[n].grad
        put("grad." + n, (torch.zeros_like(all_params[n]) if g is None else g).detach().numpy())

    opt = torch.optim.AdamW([all_params[n] for n in order], lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=WD)
    step_losses = []
    for s in range(B4R_STEPS):
        opt.zero_grad(set_to_none=True)
        distil = s + 1 < B4R_FINE_TUNE_STEP
        loss = bert4rec_total_loss(*args, distil=distil)[0]
        step_losses.append(loss.item())
        loss.backward()
        if not distil:
            assert all(all_params[n].grad is None for n in head_names)
        torch.nn.utils.clip_grad_norm_([all_params[n] for n in order], CLIP)
        opt.step()
        if s + 2 == B4R_FINE_TUNE_STEP:  # the last distillation step: the head's tensors from here on
            for n in head_names:
                put(f"step{s + 1}." + n, all_params[n].detach().numpy())
    assert step_losses[0] == total.item()
    put("step_losses", np.array(step_losses, dtype=np.float64))
    for n in order:
        put(f"step{B4R_STEPS}." + n, all_params[n].detach().numpy())
    for n in head_names:  # frozen in the fine-tuning phase: bitwise what the last distillation step left
        assert np.array_equal(np.load(os.path.join(out_dir, f"step{B4R_FINE_TUNE_STEP - 1}.{n}.npy")),
                              all_params[n].detach().numpy()), n

    manifest = {
        "format_version": FIXTURE_FORMAT_VERSION,
        "generator": "tools/make_distillation_fixtures.py",
        "torch_version": torch.__version__,
        "backbone": "BERT4Rec hf (tools/torch_bert4rec.py BERT4RecHf, .double(), dropout 0, attention mask `dataset`)",
        "config": {
            "N": N, "L": Ln, "d": d, "heads": B4R_HEADS, "layers": B4R_LAYERS, "inner": 4 * d, "ln_eps": 1e-12,
            "batch": Bn, "D": D, "tap": cfg["tap"], "aggregator": cfg["agg"], "gamma": cfg["gamma"],
            "projection": cfg["projection"], "loss": cfg["loss"], "alpha": cfg["alpha"], "beta": cfg["beta"],
            "lr": LR, "weight_decay": WD, "clip": CLIP, "steps": B4R_STEPS, "fine_tune_step": B4R_FINE_TUNE_STEP,
        },
        "batch": "seq (B, L): left-padded windows with [MASK] (= N) at fixed slots; target (B, L): the original id "
                 "at the masked slots, 0 elsewhere; lengths (B): items in each window before masking (the real "
                 "slots are the last lengths[b], [MASK] slots included); row b is user b + 1, profiles[b] its "
                 "profile, has_profile[b] whether it has one. hidden (B, L, d): the last encoder layer; tap: the "
                 "hidden-state list's entry `tap` (0 = embedding output, j = layer j, -1 = last layer). "
                 "losses = [total, L_rec, L_distil, beta]. step_losses: the loss of each AdamW step (clip first), "
                 "steps fine_tune_step.. on L_rec alone with the head's tensors gradient-less (frozen); "
                 "step<k>.<name>: parameters after step k.",
        "params": order,
        "head_params": head_names,
        "arrays": arrays,
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"{name}: total {total.item():.12g} rec {l_rec.item():.12g} distil {l_d.item():.12g} beta {beta:.6g} "
          f"steps {[round(x, 10) for x in step_losses]} -> {os.path.relpath(out_dir, ROOT)}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for name, cfg in CONFIGS.items():
        generate(name, cfg, os.path.join(ROOT, "tests", "fixtures", name))
    for name, cfg in B4R_CONFIGS.items():
        generate_bert4rec(name, cfg, os.path.join(ROOT, "tests", "fixtures", name))


if __name__ == "__main__":
    main()
