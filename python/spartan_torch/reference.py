"""The engine's test oracle: RoBERTa + a SPARTAN memory (or adapters, head, full) in float64, its logits, loss and
the gradient of every tensor of a memory file on one given padded batch (test/reference.test.ts compares the
engine with it), and a self-test (gradcheck against central differences).

  PYTHONPATH=python /usr/bin/python3 -m spartan_torch grads --backbone DIR --memory M.safetensors \
      --batch batch.json --out OUT.safetensors [--parents 16] [--children 3] [--top-k 8] [--temperature 1.6] \
      [--threads 2] [--hidden] [--out-dtype F32|F64] [--method NAME]
  PYTHONPATH=python /usr/bin/python3 -m spartan_torch forward ...same flags...   (logits + loss only, no grads)
  PYTHONPATH=python /usr/bin/python3 -m spartan_torch selftest [--threads 2]

batch.json: {"input_ids": [[...]], "attention_mask": [[...]], "position_ids": [[...]], "labels": [...],
             "task": "classification" | "regression" | "multilabel"}   (token_type_ids are all 0; position ids are used
             as given; multilabel labels are multi-hot rows [[0, 1, ...], ...])
OUT: safetensors, tensors `logits` [B,L], `loss` [1], `grad.<name>` for every trainable tensor (the names as they
appear in the memory file), and with --hidden: `hidden.0` (embeddings output), `hidden.<i+1>` (output of layer i,
after its memory, i.e. the next layer's input), `pre_memory.<i>` (layer i's output LayerNorm, before the memory).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

from .model import (ADAPTER_BLOCKS, HEAD_NAMES, METHODS, Config, Geometry, L, adapter_names, adapter_prefix,
                    infer_method, layer_norm_names, load_backbone, loss_fn, merge_memory, model_forward,
                    roberta_layer, spartan_memory, spartan_memory_naive)
from .safetensors import read_safetensors, write_safetensors


def load_batch(path):
    with open(path) as f:
        b = json.load(f)
    ids = torch.tensor(b["input_ids"], dtype=torch.long)
    mask = torch.tensor(b.get("attention_mask", [[1] * ids.shape[1]] * ids.shape[0]), dtype=torch.long)
    pos = torch.tensor(b["position_ids"], dtype=torch.long)
    if ids.dim() != 2 or mask.shape != ids.shape or pos.shape != ids.shape:
        raise ValueError("%s: input_ids, attention_mask, position_ids must be [B,T] of the same shape" % path)
    return b, ids, mask, pos


# ----------------------------------------------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------------------------------------------

def cmd_grads(args, with_grads=True):
    dtype = torch.float64
    geom = Geometry(args.parents, args.children, args.top_k, args.temperature)
    cfg, T = load_backbone(args.backbone, dtype)
    mem, _meta = read_safetensors(args.memory, dtype)
    method, trainable = merge_memory(cfg, geom, T, mem, args.method)
    b, ids, mask, pos = load_batch(args.batch)
    n_labels = T["classifier.out_proj.weight"].shape[0]
    task = b.get("task") or ("regression" if n_labels == 1 else "classification")
    if task not in ("classification", "regression", "multilabel"):
        raise ValueError("task must be classification, regression or multilabel, got %r" % task)
    if task == "regression" and n_labels != 1:
        raise ValueError("regression needs a head with 1 output, this one has %d" % n_labels)
    if int(ids.max()) >= cfg.vocab_size or int(pos.max()) >= cfg.max_position_embeddings:
        raise ValueError("input id or position id out of range")
    labels = torch.tensor(b["labels"], dtype=torch.long if task == "classification" else dtype)
    if task == "multilabel":
        if labels.shape != (ids.shape[0], n_labels) or not bool(((labels == 0) | (labels == 1)).all()):
            raise ValueError("%s: multilabel labels must be %d rows of %d 0/1 values" % (args.batch, ids.shape[0], n_labels))
    elif labels.shape != (ids.shape[0],):
        raise ValueError("%s: labels must be a list of %d values" % (args.batch, ids.shape[0]))
    if task == "classification" and (int(labels.min()) < 0 or int(labels.max()) >= n_labels):
        raise ValueError("%s: class labels must be in 0..%d" % (args.batch, n_labels - 1))
    for _, cname in trainable:
        T[cname] = T[cname].detach().clone().requires_grad_(True)
    debug = {} if args.hidden else None
    logits = model_forward(T, cfg, geom, ids, mask, pos, debug, method)
    loss = loss_fn(logits, labels, task)
    out = {"logits": logits.detach(), "loss": loss.detach().reshape(1)}
    if with_grads and trainable:
        leaves = [T[c] for _, c in trainable]
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        for (name, _), leaf, gr in zip(trainable, leaves, grads):
            out["grad." + name] = torch.zeros_like(leaf) if gr is None else gr
    if debug is not None:
        out.update({k: v.detach() for k, v in debug.items()})
    meta = {"method": method, "task": task, "loss": repr(float(loss)), "parents": str(geom.parents), "children": str(geom.children),
            "top_k": str(geom.top_k), "temperature": repr(geom.temperature), "torch": torch.__version__}
    write_safetensors(args.out, out, meta, args.out_dtype)
    print(json.dumps({"out": args.out, "method": method, "loss": float(loss), "task": task, "batch": list(ids.shape),
                      "trainable": [n for n, _ in trainable]}))


def tiny_setup(seed=0, layers=2, d=16, heads=4, ffn=24, vocab=30, positions=20, labels=3, geom=None,
               method="spartan", bottleneck=3):
    """A tiny random backbone + memory (float64) for the self-test: SPARTAN tensors for `method` spartan, adapter
    tensors (bottleneck `bottleneck`) for pfeiffer / houlsby, neither for head / full."""
    gen = torch.Generator().manual_seed(seed)
    cfg = Config({"vocab_size": vocab, "hidden_size": d, "num_hidden_layers": layers, "num_attention_heads": heads,
                  "intermediate_size": ffn, "max_position_embeddings": positions, "type_vocab_size": 1,
                  "layer_norm_eps": 1e-5, "pad_token_id": 1, "hidden_act": "gelu"})
    geom = geom or Geometry(6, 3, 3, 1.6)

    def r(*shape, std=0.3):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * std

    T = {"roberta.embeddings.word_embeddings.weight": r(vocab, d, std=1.0),
         "roberta.embeddings.position_embeddings.weight": r(positions, d, std=1.0),
         "roberta.embeddings.token_type_embeddings.weight": r(1, d, std=1.0)}
    for n in layer_norm_names(layers):
        T[n] = (1.0 + r(d, std=0.1)) if n.endswith("weight") else r(d, std=0.1)
    for i in range(layers):
        for lin, (o, ii) in (("attention.self.query", (d, d)), ("attention.self.key", (d, d)),
                             ("attention.self.value", (d, d)), ("attention.output.dense", (d, d)),
                             ("intermediate.dense", (ffn, d)), ("output.dense", (d, ffn))):
            T[L(i) + lin + ".weight"] = r(o, ii, std=1.0 / math.sqrt(ii))
            T[L(i) + lin + ".bias"] = r(o, std=0.1)
        if method == "spartan":
            T[L(i) + "spartan_experts.weight"] = r(geom.parents, d, std=0.5)
            T[L(i) + "spartan.weight"] = r(geom.parents * geom.children, d, std=0.5)
            T[L(i) + "spartan_value.weight"] = r(geom.parents * geom.children, d, std=0.5)
        for blk in ADAPTER_BLOCKS.get(method, ()):
            pre = adapter_prefix(i, blk)
            T[pre + ".down.weight"] = r(bottleneck, d, std=1.0 / math.sqrt(d))
            T[pre + ".down.bias"] = r(bottleneck, std=0.3)
            T[pre + ".up.weight"] = r(d, bottleneck, std=1.0 / math.sqrt(bottleneck))
            T[pre + ".up.bias"] = r(d, std=0.1)
    T["classifier.dense.weight"] = r(d, d, std=1.0 / math.sqrt(d))
    T["classifier.dense.bias"] = r(d, std=0.1)
    T["classifier.out_proj.weight"] = r(labels, d, std=1.0 / math.sqrt(d))
    T["classifier.out_proj.bias"] = r(labels, std=0.1)
    B, S = 3, 7
    lengths = [7, 5, 3]
    ids = torch.randint(3, vocab, (B, S), generator=gen)
    mask = torch.zeros(B, S, dtype=torch.long)
    for bi, n in enumerate(lengths):
        mask[bi, :n] = 1
    ids = torch.where(mask.bool(), ids, torch.full_like(ids, cfg.pad_token_id))
    pos = torch.where(mask.bool(), cfg.pad_token_id + torch.cumsum(mask, 1), torch.full_like(ids, cfg.pad_token_id))
    return cfg, geom, T, ids, mask, pos


def cmd_selftest(args):
    ok = True

    def report(name, passed, detail=""):
        nonlocal ok
        ok = ok and passed
        print("%s %s %s" % ("PASS" if passed else "FAIL", name, detail))

    # 1. dense memory == naive per-parent loop
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 8, generator=gen, dtype=torch.float64)
    P = torch.randn(6, 8, generator=gen, dtype=torch.float64)
    CK = torch.randn(18, 8, generator=gen, dtype=torch.float64)
    CV = torch.randn(18, 8, generator=gen, dtype=torch.float64)
    for k in (1, 3, 6):
        a = spartan_memory(x, P, CK, CV, 3, k, 1.6)
        b = spartan_memory_naive(x, P, CK, CV, 3, k, 1.6)
        report("memory dense == naive (K=%d)" % k, torch.allclose(a, b, atol=1e-12), "max|diff|=%.2e"
               % float((a - b).abs().max()))
    # 2. K = Np equals the unmasked computation (softmax over all parents, no masking at all)
    g = torch.softmax(x @ P.t(), -1)
    ach = torch.softmax((x @ CK.t() / 1.6).view(2, 5, 6, 3), -1)
    unmasked = x + torch.einsum("btp,btpj,pjd->btd", g, ach, CV.view(6, 3, 8))
    km = spartan_memory(x, P, CK, CV, 3, 6, 1.6)
    report("K=Np == unmasked", torch.allclose(km, unmasked, atol=1e-12), "max|diff|=%.2e"
           % float((km - unmasked).abs().max()))
    # top-K with masking differs from unmasked when K < Np (the mask is doing something)
    report("K<Np differs from unmasked", not torch.allclose(spartan_memory(x, P, CK, CV, 3, 2, 1.6), unmasked))

    # 3. gradcheck of the whole model (padded batch) w.r.t. a few trainable tensors, both tasks, every method
    ad1, ad0 = adapter_prefix(1, "output"), adapter_prefix(0, "attention.output")
    cases = [
        ("spartan", "classification", [L(0) + "spartan.weight", L(1) + "spartan_value.weight",
                                       L(1) + "spartan_experts.weight", L(0) + "output.LayerNorm.weight",
                                       "roberta.embeddings.LayerNorm.bias", L(1) + "attention.output.LayerNorm.bias",
                                       "classifier.dense.bias", "classifier.out_proj.weight"]),
        ("spartan", "regression", [L(0) + "spartan_experts.weight", L(1) + "spartan.weight",
                                   "classifier.out_proj.weight"]),
        # Pfeiffer: the output LayerNorm is applied twice, its gradient sums both uses.
        ("pfeiffer", "classification", [adapter_prefix(0, "output") + ".down.weight", ad1 + ".down.bias",
                                        ad1 + ".up.weight", adapter_prefix(0, "output") + ".up.bias",
                                        L(0) + "output.LayerNorm.weight", L(1) + "output.LayerNorm.bias",
                                        "classifier.out_proj.weight"]),
        ("houlsby", "classification", [ad0 + ".down.weight", ad0 + ".up.bias", ad1 + ".down.bias",
                                       ad1 + ".up.weight", adapter_prefix(1, "attention.output") + ".up.weight",
                                       L(0) + "attention.output.LayerNorm.weight", "classifier.dense.bias"]),
        ("houlsby", "regression", [ad0 + ".down.bias", ad1 + ".up.weight", ad1 + ".down.weight",
                                   "classifier.out_proj.bias"]),
        ("head", "classification", ["classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias"]),
        # full: the word embeddings' gradient is a scatter-add over the token ids (ids repeat in the batch).
        ("full", "classification", ["roberta.embeddings.word_embeddings.weight",
                                    "roberta.embeddings.token_type_embeddings.weight",
                                    L(1) + "attention.self.key.bias", L(0) + "intermediate.dense.bias"]),
    ]
    for method, task, names in cases:
        labels_n = 3 if task == "classification" else 1
        cfg, geom, T, ids, mask, pos = tiny_setup(seed=2, labels=labels_n, method=method)
        if method == "full":
            ids[0, 1:4] = ids[1, 2]                                   # repeated ids: the scatter-add matters
        labels = torch.tensor([0, 2, 1]) if task == "classification" else torch.tensor([0.5, -1.0, 2.0],
                                                                                           dtype=torch.float64)

        def f(*ts):
            T2 = dict(T)
            T2.update(zip(names, ts))
            return loss_fn(model_forward(T2, cfg, geom, ids, mask, pos, method=method), labels, task)

        inputs = tuple(T[n].clone().requires_grad_(True) for n in names)
        try:
            passed = torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
        except Exception as e:  # gradcheck raises on mismatch
            passed = False
            print(str(e)[:2000])
        report("gradcheck %s %s (%d tensors)" % (method, task, len(names)), passed)

    # 3b. the adapters do something, and a zero up-projection makes Houlsby the plain layer (Pfeiffer is not:
    # its LayerNorm is applied twice)
    cfg, geom, T, ids, mask, pos = tiny_setup(seed=4, method="houlsby")
    plain = model_forward(T, cfg, geom, ids, mask, pos, method="head")
    with_ad = model_forward(T, cfg, geom, ids, mask, pos, method="houlsby")
    T0 = dict(T)
    for n in adapter_names(cfg.num_hidden_layers, "houlsby"):
        if ".up." in n:
            T0[n] = torch.zeros_like(T[n])
    zeroed = model_forward(T0, cfg, geom, ids, mask, pos, method="houlsby")
    report("houlsby: zero up-projection == plain layers", torch.allclose(zeroed, plain, atol=1e-12) and
           not torch.allclose(with_ad, plain, atol=1e-6))
    # Pfeiffer by hand for one layer: LN(t + up(relu(down t)) + h1) with t = LN(h + h1)
    cfg, geom, T, ids, mask, pos = tiny_setup(seed=5, method="pfeiffer")
    x = torch.randn(2, 4, cfg.hidden_size, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    zero_mask = torch.zeros(2, 1, 1, 4, dtype=torch.float64)
    got = roberta_layer(T, cfg, 0, x, zero_mask, "pfeiffer")
    p, a = L(0), adapter_prefix(0, "output")
    plain_out = roberta_layer(T, cfg, 0, x, zero_mask, "head")        # plain layer: LN_out(h + h1) = t
    ln = lambda v: F.layer_norm(v, (cfg.hidden_size,), T[p + "output.LayerNorm.weight"],  # noqa: E731
                                T[p + "output.LayerNorm.bias"], cfg.layer_norm_eps)
    # the attention block's output r1 and the feed-forward output hh, written out again
    B, S, d = x.shape
    H = cfg.num_attention_heads
    q = (x @ T[p + "attention.self.query.weight"].t() + T[p + "attention.self.query.bias"]).view(B, S, H, -1)
    k = (x @ T[p + "attention.self.key.weight"].t() + T[p + "attention.self.key.bias"]).view(B, S, H, -1)
    v = (x @ T[p + "attention.self.value.weight"].t() + T[p + "attention.self.value.bias"]).view(B, S, H, -1)
    att = torch.softmax(torch.einsum("bshe,bthe->bhst", q, k) / math.sqrt(d // H), -1)
    ctx = torch.einsum("bhst,bthe->bshe", att, v).reshape(B, S, d)
    r1 = F.layer_norm(ctx @ T[p + "attention.output.dense.weight"].t() + T[p + "attention.output.dense.bias"] + x,
                      (d,), T[p + "attention.output.LayerNorm.weight"], T[p + "attention.output.LayerNorm.bias"],
                      cfg.layer_norm_eps)
    hh = (F.gelu(r1 @ T[p + "intermediate.dense.weight"].t() + T[p + "intermediate.dense.bias"])
          @ T[p + "output.dense.weight"].t() + T[p + "output.dense.bias"])
    t = ln(hh + r1)
    up = torch.relu(t @ T[a + ".down.weight"].t() + T[a + ".down.bias"]) @ T[a + ".up.weight"].t() + T[a + ".up.bias"]
    want = ln(t + up + r1)
    report("pfeiffer layer == by hand", torch.allclose(got, want, atol=1e-12) and torch.allclose(plain_out, t, atol=1e-12),
           "max|diff|=%.2e" % float((got - want).abs().max()))

    # 3c. method inference from names
    inferred = [infer_method(n) for n in (
        [L(0) + "spartan.weight", "classifier.dense.weight"],
        [adapter_prefix(0, "output") + ".up.bias", "classifier.dense.weight"],
        [adapter_prefix(0, "attention.output") + ".up.bias", adapter_prefix(0, "output") + ".up.bias"],
        list(HEAD_NAMES), ["embeddings.word_embeddings.weight"] + list(HEAD_NAMES))]
    report("method inference", inferred == ["spartan", "pfeiffer", "houlsby", "head", "full"], str(inferred))

    # 4. padding: padded positions do not change the logits of the shorter sequences
    cfg, geom, T, ids, mask, pos = tiny_setup(seed=3)
    full = model_forward(T, cfg, geom, ids, mask, pos)
    ids2 = ids.clone()
    ids2[~mask.bool()] = 5
    other = model_forward(T, cfg, geom, ids2, mask, pos)
    single = model_forward(T, cfg, geom, ids[1:2, :5], mask[1:2, :5], pos[1:2, :5])
    report("padding invariance", torch.allclose(full, other, atol=1e-12) and
           torch.allclose(full[1:2], single, atol=1e-12))

    # 5. safetensors round trip (F32 writer, F32/F16/BF16 reader)
    import tempfile
    with tempfile.TemporaryDirectory() as td:
        p = os.path.join(td, "t.safetensors")
        t = {"a": torch.randn(3, 4, dtype=torch.float64), "b": torch.tensor([1.5])}
        write_safetensors(p, t, {"k": "v"})
        back, meta = read_safetensors(p)
        rt = all(torch.allclose(back[k], t[k].float().double()) for k in t) and meta == {"k": "v"}
        # hand-made F16 / BF16 file
        vals = np.array([1.0, -2.5, 0.333251953125], dtype=np.float32)
        f16 = vals.astype("<f2").tobytes()
        bf16 = (vals.view(np.uint32) >> 16).astype("<u2").tobytes()
        hdr = json.dumps({"h": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]},
                          "b": {"dtype": "BF16", "shape": [3], "data_offsets": [6, 12]}}).encode()
        with open(p, "wb") as fh:
            fh.write(struct.pack("<Q", len(hdr)) + hdr + f16 + bf16)
        back, _ = read_safetensors(p)
        rt = rt and np.allclose(back["h"].numpy(), vals.astype(np.float16).astype(np.float64))
        rt = rt and np.allclose(back["b"].numpy(), [1.0, -2.5, 0.33203125])
        report("safetensors round trip", rt)

    print("selftest %s" % ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", nargs="?", choices=["grads", "forward", "selftest"])
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--backbone")
    ap.add_argument("--memory")
    ap.add_argument("--batch")
    ap.add_argument("--out")
    ap.add_argument("--parents", type=int, default=16)
    ap.add_argument("--children", type=int, default=3)
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=1.6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden", action="store_true", help="also write hidden.<i> and pre_memory.<i>")
    ap.add_argument("--out-dtype", choices=["F32", "F64"], default="F32")
    ap.add_argument("--method", choices=list(METHODS), default=None,
                    help="what the memory file holds (default: inferred from its tensor names)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.selftest or args.command == "selftest":
        return cmd_selftest(args)
    if args.command in ("grads", "forward"):
        for k in ("backbone", "memory", "batch", "out"):
            if getattr(args, k) is None:
                ap.error("--%s is required for %s" % (k, args.command))
        try:
            cmd_grads(args, with_grads=args.command == "grads")
        except (ValueError, OSError, KeyError) as e:
            print(json.dumps({"error": str(e)}), file=sys.stderr)
            return 1
        return 0
    ap.error("give a command: grads, forward or selftest")


if __name__ == "__main__":
    sys.exit(main())
