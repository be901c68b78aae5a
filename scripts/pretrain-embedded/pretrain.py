"""Pretrains the embedded backbone (models/roberta-embedded) on ../shared/corpus with Debian's PyTorch.

    /usr/bin/python3 scripts/pretrain-embedded/pretrain.py --ids /work/pretrain/corpus.u16 --work /work/pretrain \
        --steps 3000 [--resume] [--device cpu|cuda] [--seed 1]
    /usr/bin/python3 scripts/pretrain-embedded/pretrain.py --ids ... --work ... --export models/roberta-embedded

The run is split into resumable chunks: every --checkpoint-every steps the model, the optimiser, the step and the
RNG states are written (atomically) to WORK/checkpoint.pt; --resume continues from there, so a long run can be
stopped and restarted with identical results. Everything random is seeded from --seed.

Recipe (why each part, for a 2-core CPU):
- architecture: RoBERTa (post-LN, GELU, learned positions offset by the pad index), the roberta-base BPE
  vocabulary, hidden 256, 4 layers, 4 heads, FFN 1024: 32 MB in fp16, inside the 40 MB VSIX budget;
- word embeddings initialised from PPMI-SVD corpus statistics (embeddings.py), trained at a lower rate;
- masked-LM with dynamic masking (a fresh mask every time a span is drawn; spans drawn at random offsets, so
  the corpus is seen in many different cuts over several passes), 20 % of tokens (80/10/10);
- the MLM softmax over a sampled vocabulary per step (every target token of the batch plus random negatives)
  instead of all 50,265 ids: the full decoder would cost more than the encoder at this width;
- sequences of 32, 64 or 128 tokens (`<s> ... </s>`, the shapes the product's tasks have) at a fixed token
  budget per step;
- a sentence objective on `<s>`: from the last layer's `<s>` vector, predict (cosine) the SIF-weighted mean of
  the corpus-statistics vectors of the span's tokens. RoBERTa has no sentence objective, and a frozen backbone's
  `<s>` is what the classification head reads, so this makes `<s>` a summary of its text from step one.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from embeddings import ppmi_svd_vectors  # noqa: E402

VOCAB = 50265
PAD, BOS, EOS, UNK, MASK = 1, 0, 2, 3, 50264
NEWLINE = 50118


class Config:
    def __init__(self, hidden=256, layers=4, heads=4, ffn=1024, positions=514):
        self.hidden, self.layers, self.heads, self.ffn, self.positions = hidden, layers, heads, ffn, positions


class Layer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        d = c.hidden
        self.heads = c.heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attn_out = nn.Linear(d, d)
        self.attn_ln = nn.LayerNorm(d, eps=1e-5)
        self.inter = nn.Linear(d, c.ffn)
        self.out = nn.Linear(c.ffn, d)
        self.out_ln = nn.LayerNorm(d, eps=1e-5)

    def forward(self, x, bias):
        b, t, d = x.shape
        h = self.heads

        def split(y):
            return y.view(b, t, h, d // h).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // h) + bias, dim=-1) @ v
        x = self.attn_ln(x + self.attn_out(a.transpose(1, 2).reshape(b, t, d)))
        return self.out_ln(x + self.out(F.gelu(self.inter(x))))


class Roberta(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        d = c.hidden
        self.word = nn.Embedding(VOCAB, d)
        self.pos = nn.Embedding(c.positions, d)
        self.tok_type = nn.Embedding(1, d)  # (not `type`: nn.Module.type is a method)
        self.emb_ln = nn.LayerNorm(d, eps=1e-5)
        self.layers = nn.ModuleList(Layer(c) for _ in range(c.layers))
        # RobertaLMHead: dense + gelu + LayerNorm + decoder tied to the word embeddings, own bias
        self.lm_dense = nn.Linear(d, d)
        self.lm_ln = nn.LayerNorm(d, eps=1e-5)
        self.lm_bias = nn.Parameter(torch.zeros(VOCAB))
        self.sent = nn.Linear(d, d)  # sentence objective head (not exported)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def encode(self, ids):
        mask = (ids != PAD)
        positions = torch.cumsum(mask.long(), 1) * mask.long() + PAD  # RobertaEmbeddings' create_position_ids
        x = self.emb_ln(self.word(ids) + self.pos(positions) + self.tok_type.weight[0])
        bias = (~mask)[:, None, None, :].float() * -1e9
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def lm_hidden(self, x):
        return self.lm_ln(F.gelu(self.lm_dense(x)))


def draw_batch(ids: np.ndarray, rng: np.random.Generator, seq: int, batch: int):
    """`batch` spans of seq-2 tokens at random offsets, wrapped as <s> span </s>."""
    n = seq - 2
    starts = rng.integers(0, len(ids) - n, size=batch)
    spans = np.stack([ids[s:s + n] for s in starts]).astype(np.int64)
    out = np.empty((batch, seq), dtype=np.int64)
    out[:, 0], out[:, -1], out[:, 1:-1] = BOS, EOS, spans
    return torch.from_numpy(out)


def mask_tokens(x: torch.Tensor, gen: torch.Generator, rate: float):
    special = (x == BOS) | (x == EOS) | (x == PAD)
    chosen = (torch.rand(x.shape, generator=gen) < rate) & ~special
    inputs = x.clone()
    r = torch.rand(x.shape, generator=gen)
    inputs[chosen & (r < 0.8)] = MASK
    rand_pos = chosen & (r >= 0.8) & (r < 0.9)
    inputs[rand_pos] = torch.randint(4, MASK, (int(rand_pos.sum()),), generator=gen)
    return inputs, chosen


def sentence_targets(x: torch.Tensor, vectors: torch.Tensor, sif: torch.Tensor):
    """SIF-weighted mean of the corpus-statistics vectors of a span's tokens, unit length."""
    w = sif[x] * ((x != BOS) & (x != EOS) & (x != PAD) & (x != NEWLINE)).float()
    t = (vectors[x] * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp_min(1e-6)
    return F.normalize(t, dim=-1)


def losses(model, x, inputs, chosen, vectors, sif, gen, negatives, full_vocab=False):
    h = model.encode(inputs)
    targets = x[chosen]
    hm = model.lm_hidden(h[chosen])
    if full_vocab:
        logits = hm @ model.word.weight.t() + model.lm_bias
        mlm = F.cross_entropy(logits, targets)
    else:
        cand = torch.unique(torch.cat([targets, torch.randint(4, MASK, (negatives,), generator=gen)]))
        logits = hm @ model.word.weight[cand].t() + model.lm_bias[cand]
        mlm = F.cross_entropy(logits, torch.searchsorted(cand, targets))
    pred = F.normalize(model.sent(h[:, 0]), dim=-1)
    sent = (1 - (pred * sentence_targets(x, vectors, sif)).sum(-1)).mean()
    return mlm, sent


def save_atomic(obj, path):
    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def export(model: Roberta, c: Config, out_dir: str, info: dict):
    """Hugging Face RobertaForMaskedLM layout, F16 safetensors (the decoder is tied, so not stored)."""
    sd = {
        "roberta.embeddings.word_embeddings.weight": model.word.weight,
        "roberta.embeddings.position_embeddings.weight": model.pos.weight,
        "roberta.embeddings.token_type_embeddings.weight": model.tok_type.weight,
        "roberta.embeddings.LayerNorm.weight": model.emb_ln.weight,
        "roberta.embeddings.LayerNorm.bias": model.emb_ln.bias,
        "lm_head.dense.weight": model.lm_dense.weight, "lm_head.dense.bias": model.lm_dense.bias,
        "lm_head.layer_norm.weight": model.lm_ln.weight, "lm_head.layer_norm.bias": model.lm_ln.bias,
        "lm_head.bias": model.lm_bias,
    }
    for i, L in enumerate(model.layers):
        p = f"roberta.encoder.layer.{i}."
        for name, mod in [("attention.self.query", L.query), ("attention.self.key", L.key),
                          ("attention.self.value", L.value), ("attention.output.dense", L.attn_out),
                          ("attention.output.LayerNorm", L.attn_ln), ("intermediate.dense", L.inter),
                          ("output.dense", L.out), ("output.LayerNorm", L.out_ln)]:
            sd[p + name + ".weight"], sd[p + name + ".bias"] = mod.weight, mod.bias
    header, blobs, offset = {"__metadata__": {"format": "pt", "pretraining": json.dumps(info)}}, [], 0
    for name in sorted(sd):
        a = sd[name].detach().to("cpu", torch.float16).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F16", "shape": list(sd[name].shape), "data_offsets": [offset, offset + len(a)]}
        blobs.append(a)
        offset += len(a)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.safetensors")
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    config = {
        "architectures": ["RobertaForMaskedLM"], "model_type": "roberta", "vocab_size": VOCAB,
        "hidden_size": c.hidden, "num_hidden_layers": c.layers, "num_attention_heads": c.heads,
        "intermediate_size": c.ffn, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": c.positions, "type_vocab_size": 1,
        "initializer_range": 0.02, "layer_norm_eps": 1e-05, "pad_token_id": PAD, "bos_token_id": BOS,
        "eos_token_id": EOS,
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


def write_card(out_dir: str, c: Config, info: dict, args, params: int, log_rows: list):
    """PRETRAINING.md beside the weights; every figure comes from the run (info, the log), none typed by hand."""
    curve = "\n".join(f"| {r['step']} | {r.get('tokens', 0):,} | {r.get('minutes', 0)} | {r.get('heldout_mlm_loss_40k', '')} |"
                      for r in log_rows)
    text = f"""# The embedded backbone: how it was made

Made by `bash scripts/pretrain-embedded/build.sh WORK {info["steps"]}` (tokenize.mjs, embeddings.py, pretrain.py in that folder), seed
{info['seed']}, on {info['device']}. Every random draw (initialisation, spans, masks, negatives) comes from
generators seeded by the seed, and a checkpoint stores their states, so a run stopped and resumed continues the
same sequence; on one CPU thread the run is deterministic (GPU kernels may not be bit-identical).

- **Architecture**: RoBERTa (post-LayerNorm encoder, GELU, learned absolute positions offset by the padding index as
  in RobertaModel), {c.layers} layers, hidden {c.hidden}, {c.heads} heads, FFN {c.ffn}, {c.positions} positions, one token type,
  layer-norm epsilon 1e-5; vocabulary and tokenizer files: the published roberta-base byte-level BPE ({VOCAB:,} ids).
  {params:,} parameters, stored as F16 in Hugging Face's `RobertaForMaskedLM` layout (the MLM decoder is tied to the
  word embeddings).
- **Data**: `../shared/corpus/corpus.txt.gz` (Project Gutenberg books, public domain in the USA; English Wikipedia
  articles, CC BY-SA; Debian documentation, GPL-2+; provenance in `../shared/corpus/PROVENANCE.md`), tokenized with the
  product's own tokenizer: {info['corpus_tokens']:,} tokens, of which the last {info['heldout_tokens']:,} are held out.
- **Word embeddings initialised from corpus statistics**: positive PMI over a +-4 token window (1/distance weights,
  context smoothing 0.75) of every token seen at least 5 times against the 10,000 most frequent, rank-{c.hidden} SVD.
  Masked-LM training on two CPU cores sees a few million tokens: far too few to learn word meaning from scratch.
- **Objectives**: masked LM, {args.mask_rate:.0%} of tokens (80 % `<mask>`, 10 % random, 10 % kept), dynamic masking (spans
  drawn at random offsets with a fresh mask each time); softmax over every target of the step plus {args.negatives:,} random
  negatives (the full 50k-way decoder would cost more than the encoder at this width); plus a sentence objective on
  `<s>` (predict, by cosine, the SIF-weighted mean of the span's corpus-statistics vectors), weight {args.sentence_weight}:
  RoBERTa has no sentence objective, and `<s>` is what a frozen backbone's classification head reads.
- **Optimiser**: AdamW (betas 0.9/0.98, eps 1e-6, weight decay 0.01 on matrices), peak learning rate {args.lr:g}
  ({args.embedding_lr_scale:g}x for the word embeddings), {args.warmup} warm-up steps then linear decay, clipping at 1.0,
  {args.tokens_per_step:,} tokens a step in sequences of 32, 64 or 128 (`<s> ... </s>`), no dropout.
- **Run**: {info['steps']:,} steps, {info['tokens_seen']:,} tokens seen, {info['minutes']} minutes of training time.
- **Held-out masked-LM loss** (full vocabulary, 15 % masking, all held-out tokens): **{info['heldout_mlm_loss']}**
  (sentence objective's cosine loss {info['heldout_sentence_cosine_loss']}).

| step | tokens | minutes | held-out MLM loss (first 40k held-out tokens) |
|---:|---:|---:|---:|
{curve}

What it is good and bad at, measured through the product: `results/sst2-check.txt` (SPARTAN, head-only and adapters on
SST-2, `bash scripts/sst2-check.sh`) and `results/glue-mini.md`. It is a small model trained for about an hour on a CPU:
its word features are good (corpus statistics, refined by MLM), its contextual features are shallow; expect it to
do well on tasks that words decide (sentiment, topic, question type) and poorly on tasks that need reasoning over
two sentences (paraphrase, similarity, entailment). Real use is roberta-base.
"""
    path = os.path.join(out_dir, "PRETRAINING.md")
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", required=True, help="corpus token ids (uint16, from tokenize.mjs)")
    ap.add_argument("--work", required=True, help="folder for the checkpoint, vectors and log")
    ap.add_argument("--steps", type=int, default=3000, help="total optimiser steps of the schedule")
    ap.add_argument("--stop-after", type=int, default=0, help="stop this chunk after N more steps (0: run to --steps)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export", default="", help="write the Hugging Face folder from the checkpoint and exit")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared 2-core machine: OpenMP barriers stall when a core is taken")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tokens-per-step", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--embedding-lr-scale", type=float, default=0.3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--mask-rate", type=float, default=0.2)
    ap.add_argument("--negatives", type=int, default=6144)
    ap.add_argument("--sentence-weight", type=float, default=1.0)
    ap.add_argument("--heldout-tokens", type=int, default=200_000)
    ap.add_argument("--checkpoint-every", type=int, default=100)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    os.makedirs(args.work, exist_ok=True)
    log_path = os.path.join(args.work, "pretraining_log.jsonl")

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    all_ids = np.fromfile(args.ids, dtype=np.uint16)
    train_ids, held_ids = all_ids[:-args.heldout_tokens], all_ids[-args.heldout_tokens:]
    log(f"corpus: {len(all_ids):,} tokens ({len(train_ids):,} train, {len(held_ids):,} held out)")

    c = Config()
    vec_path = os.path.join(args.work, "ppmi_vectors.pt")
    if os.path.exists(vec_path):
        vectors, counts = torch.load(vec_path)
    else:
        t0 = time.time()
        vectors, counts = ppmi_svd_vectors(train_ids, VOCAB, c.hidden, seed=args.seed, log=log)
        save_atomic((vectors, counts), vec_path)
        log(f"PPMI-SVD vectors in {time.time() - t0:.0f} s")
    p = counts.double() / counts.sum()
    sif = (1e-3 / (1e-3 + p)).float()  # smooth inverse frequency weights (Arora et al. 2017)
    unit_vectors = F.normalize(vectors, dim=-1)

    torch.manual_seed(args.seed)
    model = Roberta(c)
    with torch.no_grad():
        model.word.weight.copy_(vectors * 0.1)
    emb_params = [model.word.weight]
    other = [p_ for n, p_ in model.named_parameters() if n != "word.weight"]
    decay = [p_ for p_ in other if p_.dim() >= 2]
    no_decay = [p_ for p_ in other if p_.dim() < 2]
    opt = torch.optim.AdamW([
        {"params": decay, "weight_decay": 0.01, "lr_scale": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0},
        {"params": emb_params, "weight_decay": 0.0, "lr_scale": args.embedding_lr_scale},
    ], lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    step, tokens_seen, elapsed = 0, 0, 0.0
    ckpt_path = os.path.join(args.work, "checkpoint.pt")
    if args.resume or args.export:
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        rng.bit_generator.state = ck["rng"]
        gen.set_state(ck["gen"])
        step, tokens_seen, elapsed = ck["step"], ck["tokens"], ck["elapsed"]
        log(f"resumed at step {step} ({tokens_seen:,} tokens, {elapsed / 60:.1f} min)")
    model.to(dev)
    vectors_d, sif_d = unit_vectors.to(dev), sif.to(dev)

    def heldout_loss(tokens=None):
        """Full-vocabulary MLM loss on the held-out tail (or its first `tokens`), fixed mask (seed 0), spans of 128."""
        model.eval()
        g = torch.Generator().manual_seed(0)
        n = 126
        spans = (tokens or len(held_ids)) // n
        total, count, sent_total = 0.0, 0, 0.0
        with torch.no_grad():
            for s in range(0, spans, 32):
                rows = [held_ids[i * n:(i + 1) * n] for i in range(s, min(spans, s + 32))]
                x = torch.full((len(rows), n + 2), EOS, dtype=torch.long)
                x[:, 0] = BOS
                x[:, 1:-1] = torch.from_numpy(np.stack(rows).astype(np.int64))
                inputs, chosen = mask_tokens(x, g, 0.15)
                mlm, sent = losses(model, x.to(dev), inputs.to(dev), chosen.to(dev), vectors_d, sif_d, g, 0,
                                   full_vocab=True)
                k = int(chosen.sum())
                total += float(mlm) * k
                count += k
                sent_total += float(sent) * len(rows)
        model.train()
        return total / count, sent_total / spans

    if args.export:
        held, held_sent = heldout_loss()
        info = {"steps": step, "tokens_seen": tokens_seen, "minutes": round(elapsed / 60, 1),
                "heldout_mlm_loss": round(held, 4), "heldout_sentence_cosine_loss": round(held_sent, 4),
                "seed": args.seed, "device": args.device, "corpus_tokens": int(len(all_ids)),
                "heldout_tokens": int(len(held_ids))}
        export(model, c, args.export, info)
        params = sum(p_.numel() for n_, p_ in model.named_parameters() if not n_.startswith("sent."))
        log_rows = [json.loads(l) for l in open(log_path)] if os.path.exists(log_path) else []
        write_card(args.export, c, info, args, params, log_rows)
        log(f"exported {args.export}: {json.dumps(info)}")
        print(json.dumps(info))
        return

    quick = 40_000  # checkpoints score the first 40k held-out tokens; the export scores all of them
    if step == 0:
        held, _ = heldout_loss(quick)
        log(f"held-out MLM loss at initialisation: {held:.3f}")
        with open(log_path, "a") as f:
            f.write(json.dumps({"step": 0, "heldout_mlm_loss_40k": round(held, 4)}) + "\n")

    end = args.steps if not args.stop_after else min(args.steps, step + args.stop_after)
    seqs, seq_p = [32, 64, 128], [0.35, 0.35, 0.3]
    model.train()
    t_chunk = time.time()
    run_mlm, run_sent, run_n = 0.0, 0.0, 0
    while step < end:
        t_step = time.time()
        seq = int(rng.choice(seqs, p=seq_p))
        x = draw_batch(train_ids, rng, seq, args.tokens_per_step // seq)
        inputs, chosen = mask_tokens(x, gen, args.mask_rate)
        # linear warm-up, then linear decay to 0 at --steps
        lr = args.lr * ((step + 1) / args.warmup if step < args.warmup
                        else max(0.0, (args.steps - step) / max(1, args.steps - args.warmup)))
        for grp in opt.param_groups:
            grp["lr"] = lr * grp["lr_scale"]
        mlm, sent = losses(model, x.to(dev), inputs.to(dev), chosen.to(dev), vectors_d, sif_d, gen, args.negatives)
        loss = mlm + args.sentence_weight * sent
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += x.numel()
        elapsed += time.time() - t_step
        run_mlm, run_sent, run_n = run_mlm + float(mlm), run_sent + float(sent), run_n + 1
        if step % 25 == 0:
            log(f"step {step}/{args.steps} seq {seq} lr {lr:.2e} mlm(sampled) {run_mlm / run_n:.3f} "
                f"sent {run_sent / run_n:.3f} {tokens_seen / max(elapsed, 1e-9):.0f} tok/s")
            run_mlm, run_sent, run_n = 0.0, 0.0, 0
        if step % args.checkpoint_every == 0 or step == end:
            held, held_sent = heldout_loss(quick)
            rec = {"step": step, "tokens": tokens_seen, "minutes": round(elapsed / 60, 2),
                   "heldout_mlm_loss_40k": round(held, 4), "heldout_sentence_cosine_loss_40k": round(held_sent, 4)}
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                         "gen": gen.get_state(), "step": step, "tokens": tokens_seen, "elapsed": elapsed,
                         "args": vars(args)}, ckpt_path)
            log(f"checkpoint: {json.dumps(rec)}")
    log(f"chunk done in {(time.time() - t_chunk) / 60:.1f} min")


if __name__ == "__main__":
    main()
