#!/usr/bin/python3
"""End-to-end check of the oracle (python/spartan_torch) through its CLI: builds a small HF-layout random backbone (names without
the `roberta.` prefix, F16 storage) and a random memory file (memory + head + LayerNorms + one unknown tensor),
runs `grads` on a padded batch, and compares chosen gradient entries with central finite differences computed
by re-running `forward` on perturbed memory files (float64 end to end).

  /usr/bin/python3 test/reference/check_reference.py [--keep DIR] [--threads 2] [--entries 2] [--task classification|regression]
Exit status 0 when every checked entry agrees (relative error < 1e-6 or absolute < 1e-9).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "python")
sys.path.insert(0, PACKAGE_ROOT)
import spartan_torch as st  # noqa: E402


def run(args):
    r = subprocess.run([sys.executable, "-m", "spartan_torch"] + args, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=PACKAGE_ROOT))
    if r.returncode != 0:
        raise SystemExit("spartan_torch %s failed:\n%s\n%s" % (" ".join(args), r.stdout, r.stderr))
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", help="write the files here instead of a temporary folder")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--entries", type=int, default=2, help="entries checked per tensor")
    ap.add_argument("--task", choices=["classification", "regression"], default="classification")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    work = args.keep or tempfile.mkdtemp(prefix="spartan-ref-")
    os.makedirs(work, exist_ok=True)
    bdir = os.path.join(work, "backbone")
    os.makedirs(bdir, exist_ok=True)
    layers, d, heads, ffn, vocab, npos = 2, 64, 4, 128, 100, 40
    geom = st.Geometry(16, 3, 8, 1.6)
    n_labels = 3 if args.task == "classification" else 1
    g = torch.Generator().manual_seed(1234)

    def r(*shape, std=0.02):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * std

    cfg = {"architectures": ["RobertaForMaskedLM"], "model_type": "roberta", "vocab_size": vocab,
           "hidden_size": d, "num_hidden_layers": layers, "num_attention_heads": heads,
           "intermediate_size": ffn, "hidden_act": "gelu", "max_position_embeddings": npos,
           "type_vocab_size": 1, "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}
    with open(os.path.join(bdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    B = {"embeddings.word_embeddings.weight": r(vocab, d, std=0.5),
         "embeddings.position_embeddings.weight": r(npos, d, std=0.5),
         "embeddings.token_type_embeddings.weight": r(1, d, std=0.5)}
    for n in st.layer_norm_names(layers):
        n = n[len("roberta."):]
        B[n] = (1.0 + r(d, std=0.05)) if n.endswith("weight") else r(d, std=0.05)
    for i in range(layers):
        for lin, (o, ii) in (("attention.self.query", (d, d)), ("attention.self.key", (d, d)),
                             ("attention.self.value", (d, d)), ("attention.output.dense", (d, d)),
                             ("intermediate.dense", (ffn, d)), ("output.dense", (d, ffn))):
            B["encoder.layer.%d.%s.weight" % (i, lin)] = r(o, ii, std=1.0 / math.sqrt(ii))
            B["encoder.layer.%d.%s.bias" % (i, lin)] = r(o, std=0.05)
    st.write_safetensors(os.path.join(bdir, "model.safetensors"), B, {"format": "pt"}, dtype="F16")

    M = {}
    for i in range(layers):
        M[st.L(i) + "spartan_experts.weight"] = r(geom.parents, d, std=0.3)
        M[st.L(i) + "spartan.weight"] = r(geom.parents * geom.children, d, std=0.3)
        M[st.L(i) + "spartan_value.weight"] = r(geom.parents * geom.children, d, std=0.3)
    for n in st.layer_norm_names(layers):
        M[n] = (1.0 + r(d, std=0.05)) if n.endswith("weight") else r(d, std=0.05)
    M["classifier.dense.weight"] = r(d, d, std=0.1)
    M["classifier.dense.bias"] = r(d, std=0.05)
    M["classifier.out_proj.weight"] = r(n_labels, d, std=0.3)
    M["classifier.out_proj.bias"] = r(n_labels, std=0.05)
    M["roberta.encoder.layer.0.adapter.down.weight"] = r(8, d)  # unknown: must be ignored with a warning
    mem_path = os.path.join(work, "memory.safetensors")
    meta = {"format_version": "1", "method": "spartan", "task": args.task}
    st.write_safetensors(mem_path, M, meta, dtype="F64")

    lengths = [12, 9, 5, 2]
    T = max(lengths)
    ids, mask, pos = [], [], []
    for n in lengths:
        body = [int(x) for x in torch.randint(3, vocab, (n - 2,), generator=g)]
        row = [0] + body + [2] + [1] * (T - n)
        ids.append(row)
        mask.append([1] * n + [0] * (T - n))
        pos.append([1 + k + 1 for k in range(n)] + [1] * (T - n))
    labels = [0, 2, 1, 2] if args.task == "classification" else [0.3, -1.2, 2.0, 0.7]
    batch = {"input_ids": ids, "attention_mask": mask, "position_ids": pos, "labels": labels, "task": args.task}
    batch_path = os.path.join(work, "batch.json")
    with open(batch_path, "w") as f:
        json.dump(batch, f)

    common = ["--backbone", bdir, "--batch", batch_path, "--threads", str(args.threads)]
    out64 = os.path.join(work, "grads64.safetensors")
    out32 = os.path.join(work, "grads.safetensors")
    r64 = run(["grads", "--memory", mem_path, "--out", out64, "--out-dtype", "F64", "--hidden"] + common)
    run(["grads", "--memory", mem_path, "--out", out32] + common)
    assert "adapter.down.weight" in r64.stderr and "ignored" in r64.stderr, r64.stderr
    G, _ = st.read_safetensors(out64)
    G32, _ = st.read_safetensors(out32)
    expected = {"grad." + n for n in M if "adapter" not in n} | {"logits", "loss"}
    assert expected <= set(G32), sorted(expected - set(G32))
    assert not any("adapter" in k for k in G32)
    for k in G32:
        tol = 1e-6 * max(1.0, float(G[k].abs().max()))
        assert float((G32[k] - G[k]).abs().max()) <= tol, k
    print("loss %.12f logits %s" % (float(G["loss"][0]), [round(v, 6) for v in G["logits"].flatten().tolist()]))

    h = 1e-5
    worst = 0.0
    failures = 0
    checked = 0
    names = sorted(n for n in M if "adapter" not in n)
    for n in names:
        t = M[n]
        flat = t.flatten()
        picks = torch.randperm(flat.numel(), generator=g)[:args.entries].tolist()
        gflat = G["grad." + n].flatten()
        if float(gflat.abs().max()) > 0:  # always include the largest-gradient entry
            top = int(gflat.abs().argmax())
            picks = [top] + [j for j in picks if j != top][:args.entries - 1]
        for j in picks:
            vals = []
            for sgn in (+1, -1):
                M2 = dict(M)
                f2 = flat.clone()
                f2[j] += sgn * h
                M2[n] = f2.reshape(t.shape)
                p = os.path.join(work, "perturbed.safetensors")
                st.write_safetensors(p, M2, meta, dtype="F64")
                o = os.path.join(work, "fwd.safetensors")
                run(["forward", "--memory", p, "--out", o, "--out-dtype", "F64"] + common)
                vals.append(float(st.read_safetensors(o)[0]["loss"][0]))
            fd = (vals[0] - vals[1]) / (2 * h)
            an = float(gflat[j])
            err = abs(fd - an)
            rel = err / max(abs(fd), abs(an), 1e-300)
            ok = err < 1e-9 or rel < 1e-6
            worst = max(worst, min(rel, err / 1e-9 * 1e-6) if not ok else 0.0)
            failures += not ok
            checked += 1
            print("%s %s[%d] analytic %.10e fd %.10e abs %.1e rel %.1e" % ("ok  " if ok else "FAIL", n, j, an, fd,
                                                                          err, rel))
    print("%d passed, %d failed" % (checked - failures, failures))
    print("files in %s" % work)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
