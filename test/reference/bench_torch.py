#!/usr/bin/python3
"""PyTorch throughput baseline for the Spartan engine: roberta-base geometry (12 layers, d 768, 12 heads, FFN 3072,
vocab 50265, 514 positions) with seeded random float32 weights, on the CPU.

For each batch x seq shape it measures
  (a) plain backbone inference, instances/minute (torch.inference_mode, RoBERTa + classification head);
  (b) SPARTAN inference, instances/minute (a memory after every layer);
  (c) SPARTAN training, examples/second: backbone frozen except its LayerNorms; memories + head + LayerNorms
      trainable; forward + cross-entropy + backward + AdamW step, with dropout --dropout at the engine's places
      (embeddings, attention probabilities, both sub-layer outputs, twice in the head).
This is the strongest plain PyTorch form of the model: float32, batched, frozen weights with requires_grad off
(their weight gradients are never computed), inference under torch.inference_mode, the dense SPARTAN memory
(three GEMMs per layer, no gathers).
Each figure: `--warmup` untimed iterations, then the median of the timed repetitions. All tokens are real
(attention mask all ones) unless --seq-lengths is given.

  /usr/bin/python3 test/reference/bench_torch.py [--threads 2] [--shapes 32x128,16x128] [--reps-infer 3]
      [--reps-train 2] [--warmup 1] [--parents 16 --children 3 --top-k 8 --temperature 1.6] [--labels 2]
      [--only plain,spartan,train] [--seq-lengths FILE --batch-size 32] [--batches FILE] [--dropout 0.1]

--seq-lengths FILE: a JSON array of sequence lengths or one integer per line. The lengths are cut into batches of
--batch-size in file order, each padded to its longest sequence (as the engine's padBatch does); one untimed batch
warms up, then the whole list is run once per figure; throughput is over all the instances of the file.
--batches FILE: a JSON array of batches, each an array of token-id lists (real rows, as the engine batched them);
each batch is padded to its longest row; one untimed batch warms up, then the list is run once per repetition.

Every result carries `peak_rss_mb` (the process's peak RSS so far: run one --only figure per process to get the
peak of that phase alone) and `cpu_seconds_*` (process CPU seconds of each timed repetition, next to the wall ones).

Prints one JSON object on stdout; progress lines go to stderr.
"""
import argparse
import json
import os
import re
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "python"))
import spartan_torch as st  # noqa: E402

ROBERTA_BASE = {"vocab_size": 50265, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                "intermediate_size": 3072, "max_position_embeddings": 514, "type_vocab_size": 1,
                "layer_norm_eps": 1e-5, "pad_token_id": 1, "hidden_act": "gelu"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def random_tensors(cfg, geom, n_labels, seed, with_memory):
    g = torch.Generator().manual_seed(seed)
    d, f, n = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.02

    T = {"roberta.embeddings.word_embeddings.weight": r(cfg.vocab_size, d),
         "roberta.embeddings.position_embeddings.weight": r(cfg.max_position_embeddings, d),
         "roberta.embeddings.token_type_embeddings.weight": r(cfg.type_vocab_size, d)}
    for name in st.layer_norm_names(n):
        T[name] = torch.ones(d) if name.endswith("weight") else torch.zeros(d)
    for i in range(n):
        for lin, (o, ii) in (("attention.self.query", (d, d)), ("attention.self.key", (d, d)),
                             ("attention.self.value", (d, d)), ("attention.output.dense", (d, d)),
                             ("intermediate.dense", (f, d)), ("output.dense", (d, f))):
            T[st.L(i) + lin + ".weight"] = r(o, ii)
            T[st.L(i) + lin + ".bias"] = torch.zeros(o)
        if with_memory:
            T[st.L(i) + "spartan_experts.weight"] = r(geom.parents, d)
            T[st.L(i) + "spartan.weight"] = r(geom.parents * geom.children, d)
            T[st.L(i) + "spartan_value.weight"] = r(geom.parents * geom.children, d)
    T["classifier.dense.weight"] = r(d, d)
    T["classifier.dense.bias"] = torch.zeros(d)
    T["classifier.out_proj.weight"] = r(n_labels, d)
    T["classifier.out_proj.bias"] = torch.zeros(n_labels)
    return T


def make_batch(cfg, lengths, gen):
    """Padded batch like RobertaEmbeddings expects: position ids pad+1.. for real tokens, pad for padding."""
    B, S = len(lengths), max(lengths)
    ids = torch.randint(3, cfg.vocab_size, (B, S), generator=gen)
    mask = torch.zeros(B, S, dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
    pad = cfg.pad_token_id
    ids = torch.where(mask.bool(), ids, torch.full_like(ids, pad))
    pos = torch.where(mask.bool(), pad + torch.cumsum(mask, 1), torch.full_like(ids, pad))
    return ids, mask, pos


def make_real_batch(cfg, rows):
    """A batch of real token-id rows, padded to its longest as the engine's padBatch does."""
    lengths = [len(r) for r in rows]
    B, S = len(rows), max(lengths)
    pad = cfg.pad_token_id
    ids = torch.full((B, S), pad, dtype=torch.long)
    mask = torch.zeros(B, S, dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[b, :len(r)] = 1
    pos = torch.where(mask.bool(), pad + torch.cumsum(mask, 1), torch.full_like(ids, pad))
    return ids, mask, pos


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, warmup, reps, cpu=None, cpu_seconds=None):
    """Wall times of `reps` calls after `warmup` calls; appends process CPU seconds / wall seconds to `cpu`
    (about --threads when the machine is otherwise idle, lower when other processes take the cores)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append((time.process_time() - c0) / times[-1])
        if cpu_seconds is not None:
            cpu_seconds.append(time.process_time() - c0)
    return times


def blas_libs():
    a = torch.randn(8, 8)
    (a @ a).sum().item()
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if re.search(r"(blas|lapack)", os.path.basename(p)):
                libs.add(p)
    return sorted(libs)


def gemm_gflops():
    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    a @ b
    t0 = time.perf_counter()
    for _ in range(5):
        a @ b
    return 5 * 2 * 1024 ** 3 / (time.perf_counter() - t0) / 1e9


class Runner:
    def __init__(self, cfg, geom, n_labels, seed, lr, dropout=0.0, with_plain=True):
        self.cfg = cfg
        self.geom = geom
        self.dropout = dropout
        # Only the models a run measures are built, so that peak_rss_mb is that phase's own.
        self.plain = st.RobertaSpartan(cfg, geom, random_tensors(cfg, geom, n_labels, seed, False)).eval() \
            if with_plain else None
        T = random_tensors(cfg, geom, n_labels, seed, True)
        lns = set(st.layer_norm_names(cfg.num_hidden_layers))
        trainable = lambda name: name in lns or name.startswith("classifier.") or "spartan" in name  # noqa: E731
        self.spartan = st.RobertaSpartan(cfg, geom, T, trainable)
        self.params = [p for p in self.spartan.parameters() if p.requires_grad]
        self.n_trainable = sum(p.numel() for p in self.params)
        self.opt = torch.optim.AdamW(self.params, lr=lr)
        self.n_labels = n_labels
        self.gen = torch.Generator().manual_seed(seed + 1)

    def infer(self, model, batches):
        def fn():
            with torch.inference_mode():
                for ids, mask, pos in batches:
                    model(ids, mask, pos)
        return fn

    def train(self, batches):
        labels = [torch.randint(0, self.n_labels, (b[0].shape[0],), generator=self.gen) for b in batches]
        self.spartan.train()
        p = self.dropout
        drop = (lambda t: torch.nn.functional.dropout(t, p, True)) if p > 0 else st.no_dropout

        def fn():
            for (ids, mask, pos), y in zip(batches, labels):
                self.opt.zero_grad(set_to_none=True)
                logits = st.model_forward(self.spartan.canonical(), self.cfg, self.geom, ids, mask, pos, drop=drop)
                loss = torch.nn.functional.cross_entropy(logits, y)
                loss.backward()
                self.opt.step()
        return fn


def measure(runner, batches, warm_batches, args, only):
    """Median figures plus `best_*` (from the fastest repetition: the better estimate on a busy machine) and
    `cpu_per_wall_*` (median CPU-seconds per wall-second of the timed repetitions; `contended_*` is true when a
    repetition got less than 0.85 x --threads, i.e. another process took cores: prefer `best_*` then, or rerun)."""
    n = sum(b[0].shape[0] for b in batches)
    res = {}
    for key in ("plain", "spartan", "train"):
        if key not in only:
            continue
        cpu, cpu_s = [], []
        if key == "train":
            timed(runner.train(warm_batches), args.warmup, 0)
            t = timed(runner.train(batches), 0, args.reps_train, cpu, cpu_s)
            name, scale, unit = "spartan_train_examples_per_sec", 1.0, "examples/s"
        else:
            model = runner.plain if key == "plain" else runner.spartan
            timed(runner.infer(model, warm_batches), args.warmup, 0)
            t = timed(runner.infer(model, batches), 0, args.reps_infer, cpu, cpu_s)
            name, scale, unit = "%s_infer_instances_per_min" % key, 60.0, "instances/min"
        res[name] = round(n / statistics.median(t) * scale, 2)
        res["best_" + name] = round(n / min(t) * scale, 2)
        res[name.rsplit("_per_", 1)[0].replace("_instances", "").replace("_examples", "") + "_seconds"] = \
            [round(v, 3) for v in t]
        res["cpu_per_wall_" + key] = round(statistics.median(cpu), 2)
        res["cpu_seconds_" + key] = [round(v, 3) for v in cpu_s]
        # another process took cores during the timed repetitions: the median is not trustworthy
        res["contended_" + key] = min(cpu) < 0.85 * torch.get_num_threads()
        log("  %s: %.2f %s (best %.2f)  %s  cpu/wall %.2f" % (name, res[name], unit, res["best_" + name], fmt(t),
                                                             res["cpu_per_wall_" + key]))
    res["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return res


def fmt(ts):
    return "[" + ", ".join("%.2fs" % t for t in ts) + "]"


def read_lengths(path):
    with open(path) as f:
        text = f.read().strip()
    if text.startswith("["):
        return [int(x) for x in json.loads(text)]
    return [int(line) for line in text.split() if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shapes", default="32x128,16x128", help="comma-separated BATCHxSEQ")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps-infer", type=int, default=3)
    ap.add_argument("--reps-train", type=int, default=2)
    ap.add_argument("--parents", type=int, default=16)
    ap.add_argument("--children", type=int, default=3)
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=1.6)
    ap.add_argument("--labels", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="plain,spartan,train")
    ap.add_argument("--seq-lengths", help="file of sequence lengths (JSON array or one per line)")
    ap.add_argument("--batch-size", type=int, default=32, help="batch size for --seq-lengths")
    ap.add_argument("--batches", help="JSON file: array of batches, each an array of token-id lists")
    ap.add_argument("--dropout", type=float, default=0.0, help="training dropout (the engine's default is 0.1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    only = set(args.only.split(","))

    cfg = st.Config(ROBERTA_BASE)
    geom = st.Geometry(args.parents, args.children, args.top_k, args.temperature)
    t0 = time.perf_counter()
    runner = Runner(cfg, geom, args.labels, args.seed, args.lr, args.dropout, with_plain="plain" in only)
    log("built roberta-base + SPARTAN (%d trainable parameters) in %.1fs" % (runner.n_trainable,
                                                                           time.perf_counter() - t0))
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_libs(),
           "gemm_1024_gflops": round(gemm_gflops(), 1), "dtype": "float32",
           "model": dict(ROBERTA_BASE, name="roberta-base geometry, random weights (seed %d)" % args.seed),
           "spartan": {"parents": geom.parents, "children": geom.children, "top_k": geom.top_k,
                       "temperature": geom.temperature, "every_layer": True},
           "trainable_parameters": runner.n_trainable, "labels": args.labels, "optimizer": "AdamW lr=%g" % args.lr,
           "dropout": args.dropout,
           "warmup": args.warmup, "reps_infer": args.reps_infer, "reps_train": args.reps_train,
           "statistic": "median", "cpus": os.cpu_count(),
           "loadavg_1_5_15_start": [round(v, 2) for v in os.getloadavg()], "results": []}
    gen = torch.Generator().manual_seed(args.seed + 2)
    if args.batches:
        with open(args.batches) as f:
            rows = json.load(f)
        batches = [make_real_batch(cfg, b) for b in rows]
        n = sum(len(b) for b in rows)
        log("batches %s: %d instances in %d batches" % (args.batches, n, len(batches)))
        r = {"batches_file": args.batches, "instances": n, "batch_count": len(batches),
             "mean_padded_length": sum(b[0].shape[1] for b in batches) / len(batches)}
        r.update(measure(runner, batches, batches[:1], args, only))
        out["results"].append(r)
    elif args.seq_lengths:
        lengths = read_lengths(args.seq_lengths)
        if not lengths or min(lengths) < 1 or max(lengths) > cfg.max_position_embeddings - cfg.pad_token_id - 1:
            raise SystemExit("%s: lengths must be 1..%d" % (args.seq_lengths,
                                                            cfg.max_position_embeddings - cfg.pad_token_id - 1))
        chunks = [lengths[i:i + args.batch_size] for i in range(0, len(lengths), args.batch_size)]
        batches = [make_batch(cfg, c, gen) for c in chunks]
        log("seq-lengths %s: %d instances in %d batches, mean length %.1f" % (
            args.seq_lengths, len(lengths), len(batches), sum(lengths) / len(lengths)))
        r = {"seq_lengths_file": args.seq_lengths, "instances": len(lengths), "batch": args.batch_size,
             "mean_length": sum(lengths) / len(lengths), "max_length": max(lengths)}
        r.update(measure(runner, batches, batches[:1], args, only))
        out["results"].append(r)
    else:
        for shape in args.shapes.split(","):
            B, S = (int(v) for v in shape.lower().split("x"))
            log("shape %dx%d" % (B, S))
            batches = [make_batch(cfg, [S] * B, gen)]
            r = {"batch": B, "seq": S}
            r.update(measure(runner, batches, batches, args, only))
            out["results"].append(r)
    out["total_seconds"] = round(time.perf_counter() - t0, 1)
    out["loadavg_1_5_15_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
