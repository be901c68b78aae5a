"""`train` and `eval` of the PyTorch trainer: the engine's training loop (src/engine/training/trainer.ts) over the
reference model, data parallel over a process group.

Every rank composes the same global batches (the engine's seeded shuffle and length bucketing) and takes its
share of each (data.rank_share); each computes the gradient of (sum of its rows' losses) / (global batch size),
and one all-reduce (sum) of the trained tensors' gradients only (memories, head, LayerNorms: a few MB) gives every
rank the gradient of the global batch's mean loss — what one process on the whole batch computes, for any split,
uneven last batches included. The optimiser then takes the same step everywhere. Rank 0 evaluates the dev set,
decides early stopping for all, and writes the memory (atomically).
"""
import json
import math
import os
import socket
import sys
import time

import torch
import torch.nn.functional as F

from . import __version__
from .data import (examples_of, load_rows, make_batches, pad_batch, rank_share, require_dev_labels,
                   split_dev_share, EncodedData)
from .distributed import Group
from .errors import SpartanError
from .memory import (backbone_identity, geometry_of, initial_tensors, load_memory, resolve_backbone, save_memory,
                     trainable_names)
from .metrics import classification_metrics, regression_metrics
from .model import Geometry, load_backbone, model_forward

M32 = 0xFFFFFFFF


def js_round(x):
    return int(math.floor(x + 0.5))


class Output:
    """The CLI's output contract: with --json, progress events as JSON lines on stderr and one result object on
    stdout; otherwise human lines on stderr. Only rank 0 speaks."""

    def __init__(self, json_mode, speak=True):
        self.json = json_mode
        self.speak = speak

    def event(self, e, human=None):
        if not self.speak:
            return
        if self.json:
            print(json.dumps(e), file=sys.stderr, flush=True)
        elif human:
            print(human, file=sys.stderr, flush=True)

    def result(self, value, human):
        if self.speak:
            print(json.dumps(value) if self.json else human, flush=True)


def primary_metric(task, requested=None):
    return requested or ("pearson" if task == "regression" else "accuracy")


def predict_logits(T, cfg, geom, method, examples, batch_size, pad_id, device):
    """Logits of every example in input order; batches as the engine's predictLogits (no shuffle, bucketed)."""
    out = [None] * len(examples)
    batches = make_batches([len(e[0]) for e in examples], batch_size, shuffle=False, seed=0, bucket=True)
    with torch.no_grad():
        for indices in batches:
            ids, mask, pos, _ = pad_batch([examples[i] for i in indices], pad_id)
            logits = model_forward(T, cfg, geom, ids.to(device), mask.to(device), pos.to(device), method=method)
            for row, i in enumerate(indices):
                out[i] = logits[row].double().cpu().tolist()
    return out


def evaluate(T, cfg, geom, method, examples, task, num_labels, batch_size, pad_id, device):
    logits = predict_logits(T, cfg, geom, method, examples, batch_size, pad_id, device)
    gold = [e[1] for e in examples]
    if task == "regression":
        return regression_metrics([l[0] for l in logits], gold), logits
    pred = [max(range(len(l)), key=lambda k: (l[k], -k)) for l in logits]    # argmax, first on ties
    return classification_metrics(pred, gold, num_labels), logits


def loss_sum(logits, labels, task):
    """The sum of the rows' losses (divided by the global batch size by the caller)."""
    if task == "regression":
        return F.mse_loss(logits[:, 0], labels.to(logits.dtype), reduction="sum")
    return F.cross_entropy(logits, labels.long(), reduction="sum")


class AdamW:
    """As the engine's AdamW (= torch.optim.AdamW): bias-corrected moments, decoupled decay except on biases and
    LayerNorms."""

    def __init__(self, names, weight_decay, beta1=0.9, beta2=0.999, eps=1e-8):
        self.names, self.wd, self.b1, self.b2, self.eps = names, weight_decay, beta1, beta2, eps
        self.m, self.v, self.t = {}, {}, 0

    def step(self, params, grads, lr):
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        with torch.no_grad():
            for name in self.names:
                w, g = params[name], grads[name]
                if name not in self.m:
                    self.m[name], self.v[name] = torch.zeros_like(w), torch.zeros_like(w)
                m, v = self.m[name], self.v[name]
                m.mul_(self.b1).add_(g, alpha=1 - self.b1)
                v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
                decay = 0.0 if (name.endswith(".bias") or "LayerNorm" in name) else lr * self.wd
                update = m / (v.sqrt() / math.sqrt(c2) + self.eps)
                w.sub_(decay * w + (lr / c1) * update)


def sgd_step(params, grads, names, lr):
    with torch.no_grad():
        for n in names:
            params[n].sub_(lr * grads[n])


def clip_grad_norm(grads, names, max_norm):
    """The engine's clipScale (training/optimizer.ts): global L2 norm; scaled by max_norm / (norm + 1e-6) when above max_norm."""
    norm = math.sqrt(sum(float((grads[n].double() ** 2).sum()) for n in names))
    if max_norm > 0 and norm > max_norm:
        s = max_norm / (norm + 1e-6)
        for n in names:
            grads[n].mul_(s)
    return norm


def linear_schedule(step, total, warmup, peak):
    if step < warmup:
        return peak * (step + 1) / max(1, warmup)
    return peak * max(0.0, (total - step) / max(1, total - warmup))


def _prepare(args, backbone_dir, tokenizer_hash, backbone_sha, backbone_name):
    """Rank 0's data work (reading, engine encoding, checks), in the engine's order so the first problem reported
    is the one `spartan train` reports. Returns what every rank needs."""
    max_length = args.max_length

    def rows(path):
        data = load_rows(path, backbone_dir, max_length or 128, args.skip_invalid, args.spartan_cli, args.node)
        h = data.header
        if h["tokenizer_hash"] != tokenizer_hash:
            raise SpartanError("%s was encoded with another tokenizer (hash %s\u2026) than the backbone %s's (%s\u2026)"
                               % (path, h["tokenizer_hash"][:12], backbone_dir, tokenizer_hash[:12]))
        if max_length is not None and h["max_length"] != max_length:
            raise SpartanError("%s was encoded with --max-length %d, not %d: encode it again or pass --max-length %d"
                               % (path, h["max_length"], max_length, h["max_length"]))
        return data

    train_data = rows(args.data)
    max_length = train_data.header["max_length"]
    task = train_data.task()
    if task["task"] not in ("classification", "regression"):
        raise SpartanError("%s is a %s task; the PyTorch trainer trains classification and regression only (use "
                           "`spartan train`)" % (args.data, task["task"]))
    dev_data, dev_file = None, args.dev
    if args.dev:
        dev_data = rows(args.dev)
        if dev_data.header["max_length"] != max_length:
            raise SpartanError("%s was encoded with --max-length %d but %s with %d" % (
                args.dev, dev_data.header["max_length"], args.data, max_length))
        if task["task"] == "classification":
            require_dev_labels(dev_data.rows, task["labels"], args.dev)
    elif args.dev_share:
        kept, held = split_dev_share(train_data.rows, args.dev_share, args.seed, task["task"] == "regression")
        dev_file = "%s (held-out %d rows)" % (args.data, len(held))
        dev_data = EncodedData(args.data, dict(train_data.header, source=dev_file), held)
        train_data = EncodedData(args.data, train_data.header, kept)

    method = {"name": args.method, "geometry": {"parents": args.parents, "children": args.children, "topK": args.top_k,
                                                "temperature": args.temperature},
              "trainLayerNorms": args.method == "spartan" if args.train_layer_norms is None else args.train_layer_norms}
    init = None
    if args.init:
        tensors, meta = load_memory(args.init, backbone_sha, backbone_name)
        if meta["task"] != task["task"] or meta["labels"] != task["labels"]:
            raise SpartanError("%s is a %s memory with labels %s, but %s is %s with labels %s" % (
                args.init, meta["task"], json.dumps(meta["labels"], separators=(",", ":")), args.data, task["task"],
                json.dumps(task["labels"], separators=(",", ":"))))
        name, geometry, tln = geometry_of(meta)
        method = {"name": name, "geometry": geometry,
                  "trainLayerNorms": tln if args.train_layer_norms is None else args.train_layer_norms}
        init = {k: v.numpy() for k, v in tensors.items()}
    return {"task": task, "max_length": max_length, "pad_id": train_data.header["pad_id"],
            "train": examples_of(train_data, task), "train_truncated": train_data.truncated,
            "dev": examples_of(dev_data, task) if dev_data else None, "dev_file": dev_file,
            "dev_truncated": dev_data.truncated if dev_data else 0, "method": method, "init": init}


def train(args):
    started = time.time()
    group = Group(args.device, args.backend)
    out = Output(args.json, group.is_main)
    try:
        return _train(args, group, out, started)
    finally:
        group.close()


def _broadcast_or_raise(group, fn):
    """fn() on rank 0, its result on every rank; a user error on rank 0 stops every rank (reported once)."""
    payload = None
    if group.is_main:
        try:
            payload = {"ok": fn()}
        except SpartanError as e:
            payload = {"error": str(e)}
    payload = group.broadcast(payload)
    if "error" in payload:
        raise SpartanError(payload["error"]) if group.is_main else SystemExit(1)
    return payload["ok"]


def _train(args, group, out, started):
    if args.quantize != "none":
        raise SpartanError("--quantize %s: the int8 backbone is the engine's (spartan train --quantize int8); "
                           "the PyTorch trainer trains a float32 backbone" % args.quantize)
    torch.set_num_threads(args.threads)
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.compute_dtype]
    device = group.device
    backbone_dir = resolve_backbone(args.backbone)
    name, sha, tok_hash = backbone_identity(backbone_dir)
    cfg, T = load_backbone(backbone_dir, dtype)
    T = {k: v.to(device) for k, v in T.items()}
    prep = _broadcast_or_raise(group, lambda: _prepare(args, backbone_dir, tok_hash, sha, name))
    task, method = prep["task"], prep["method"]
    num_labels = 1 if task["task"] == "regression" else len(task["labels"])
    mname, geo = method["name"], method["geometry"]
    geom = Geometry(geo["parents"], geo["children"], geo["topK"], geo["temperature"])
    train_ex, dev_ex = prep["train"], prep["dev"]

    names = trainable_names(mname, geo, method["trainLayerNorms"], cfg, num_labels)
    fresh = initial_tensors(mname, geo, cfg, num_labels, args.seed)
    init = prep["init"] or {}
    params = dict(T)
    for n in names:
        if n in init:
            src = torch.from_numpy(init[n])
        elif n in fresh:
            src = fresh[n]
        elif n in T:
            src = T[n]
        else:
            raise SpartanError("no starting value for %s" % n)
        want = list(fresh[n].shape) if n in fresh else list(T[n].shape) if n in T else None
        if want is not None and list(src.shape) != want:
            raise SpartanError("the initial memory's %s has shape %s but this model needs %s" % (n, list(src.shape), want))
        # In the compute dtype while training (float32 as the engine, or float64); saved as --dtype.
        params[n] = src.detach().to(device=device, dtype=dtype).clone()

    B = args.batch_size
    steps_per_epoch = max(1, math.ceil(len(train_ex) / B))
    total = args.steps if args.steps is not None else args.epochs * steps_per_epoch
    epochs = math.ceil(total / steps_per_epoch)
    n_trained = sum(params[n].numel() for n in names)
    out.event({"event": "start", "steps": total, "epochs": epochs, "examples": len(train_ex),
               "devExamples": len(dev_ex) if dev_ex else 0, "trainableParameters": n_trained,
               "truncated": prep["train_truncated"], "devTruncated": prep["dev_truncated"], "worldSize": group.world_size},
              "training %s (%s): %d rows, %d steps, %s trained parameters on %d rank(s)%s" % (
                  task["task"], ", ".join(task["labels"]) or "score", len(train_ex), total, format(n_trained, ","),
                  group.world_size, "; %d rows truncated to %d tokens" % (prep["train_truncated"], prep["max_length"])
                  if prep["train_truncated"] else ""))

    metric_name = primary_metric(task["task"], args.metric)
    pad_id = prep["pad_id"]

    def eval_dev():
        m, _ = evaluate(params, cfg, geom, mname, dev_ex, task["task"], num_labels, B * 2, pad_id, device)
        return m

    def snapshot():
        return {n: params[n].detach().to("cpu", torch.float32).clone() for n in names}

    best_tensors, best_metrics, best_epoch, history, step = snapshot(), {}, 0, [], 0
    keep = 1.0 - args.dropout
    gen = torch.Generator(device=device).manual_seed((args.seed * 1000003 + group.rank) & 0x7FFFFFFFFFFFFFFF)

    def drop(x):
        if args.dropout <= 0:
            return x
        mask = torch.empty_like(x).bernoulli_(keep, generator=gen)
        return x * mask / keep

    if total == 0:
        if dev_ex and group.is_main:
            best_metrics = eval_dev()
    else:
        optimizer = None if args.optimizer == "sgd" else AdamW(names, args.weight_decay)
        warmup = js_round(args.warmup * total)
        lengths = [len(e[0]) for e in train_ex]
        best, since_best = -math.inf, 0
        sizes = [params[n].numel() for n in names]
        for epoch in range(1, epochs + 1):
            if step >= total:
                break
            batches = make_batches(lengths, B, args.shuffle, (args.seed * 1000 + epoch) & M32,
                                   args.shuffle and args.bucket)
            epoch_loss, epoch_batches = 0.0, 0
            for indices in batches:
                if step >= total:
                    break
                t0 = time.time()
                mine = rank_share(indices, group.rank, group.world_size)
                leaves = [params[n].requires_grad_(True) for n in names]
                if mine:
                    ids, mask, pos, labels = pad_batch([train_ex[i] for i in mine], pad_id)
                    logits = model_forward(params, cfg, geom, ids.to(device), mask.to(device), pos.to(device),
                                           method=mname, drop=drop)
                    part = loss_sum(logits, labels.to(device), task["task"])
                    grads = torch.autograd.grad(part / len(indices), leaves, allow_unused=True)
                    grads = [torch.zeros_like(l) if g is None else g for g, l in zip(grads, leaves)]
                    part = part.detach()
                else:                                   # a global batch smaller than the world: nothing here
                    grads = [torch.zeros_like(l) for l in leaves]
                    part = torch.zeros((), dtype=dtype, device=device)
                for l in leaves:
                    l.requires_grad_(False)
                flat = torch.cat([g.reshape(-1) for g in grads] + [part.reshape(1).to(dtype)])
                group.all_reduce_sum(flat)
                loss = float(flat[-1]) / len(indices)
                if not math.isfinite(loss):
                    raise SpartanError("training diverged at step %d (loss %s); try a lower learning rate" % (step + 1, loss))
                gd = dict(zip(names, (c.view_as(params[n]) for c, n in zip(torch.split(flat[:-1], sizes), names))))
                lr = args.lr
                if args.optimizer == "sgd":
                    grad_norm = clip_grad_norm(gd, names, 0)
                    sgd_step(params, gd, names, lr)
                else:
                    grad_norm = clip_grad_norm(gd, names, args.clip)
                    lr = linear_schedule(step, total, warmup, args.lr)
                    optimizer.step(params, gd, lr)
                step += 1
                epoch_loss += loss
                epoch_batches += 1
                eps = len(indices) / max(1e-3, time.time() - t0)
                out.event({"event": "step", "step": step, "steps": total, "epoch": epoch, "loss": loss, "lr": lr,
                           "gradNorm": grad_norm, "examplesPerSecond": eps},
                          "step %d/%d  epoch %d  loss %.4f  lr %.2e  %.1f ex/s" % (step, total, epoch, loss, lr, eps))
            entry = {"epoch": epoch, "step": step, "loss": epoch_loss / max(1, epoch_batches)}
            history.append(entry)
            if dev_ex:
                decision = None
                if group.is_main:
                    try:
                        metrics = eval_dev()
                        if metric_name not in metrics:
                            raise SpartanError('unknown metric "%s" (have: %s)' % (metric_name, ", ".join(metrics)))
                        decision = {"metrics": metrics, "improved": metrics[metric_name] > best}
                    except SpartanError as e:
                        decision = {"error": str(e)}
                decision = group.broadcast(decision)
                if "error" in decision:
                    raise SpartanError(decision["error"]) if group.is_main else SystemExit(1)
                metrics = decision["metrics"]
                entry["metrics"] = metrics
                out.event({"event": "eval", "epoch": epoch, "step": step, "metrics": metrics, "best": decision["improved"]},
                          "epoch %d: %s%s" % (epoch, "  ".join("%s %.4f" % kv for kv in metrics.items()),
                                              "  (best)" if decision["improved"] else ""))
                if decision["improved"]:
                    best, since_best = metrics[metric_name], 0
                    best_tensors, best_metrics, best_epoch = snapshot(), metrics, epoch
                else:
                    since_best += 1
                    if args.patience > 0 and since_best >= args.patience:
                        break
            else:
                best_tensors, best_epoch = snapshot(), epoch
    seconds = time.time() - started
    hosts = group.hosts()
    if total:
        out.event({"event": "done", "steps": step, "seconds": seconds})
    if not group.is_main:
        return 0
    hyper = {"method": mname, **geo, "trainLayerNorms": method["trainLayerNorms"], "optimizer": args.optimizer,
             "lr": args.lr, "weightDecay": args.weight_decay, "warmupRatio": args.warmup, "clipNorm": args.clip,
             "epochs": args.epochs, "steps": step, "batchSize": B, "maxLength": prep["max_length"],
             "dropout": args.dropout, "seed": args.seed, "pair": task["pair"], "init": args.init,
             # The backbone precision, as `spartan train` records it: this trainer's backbone is float32.
             "quantize": "none"}
    metrics = dict(best_metrics, bestEpoch=best_epoch, trainRows=len(train_ex), devRows=len(dev_ex) if dev_ex else 0,
                   truncated=prep["train_truncated"], seconds=seconds)
    trained_by = {"trainer": "spartan_torch", "version": __version__, "torch": torch.__version__,
                  "worldSize": group.world_size, "hosts": hosts, "device": device.type, "backend": group.backend,
                  "computeDtype": args.compute_dtype}
    nbytes = save_memory(args.out, best_tensors, {
        "method": mname, "backbone": {"name": name, "sha256": sha}, "tokenizerHash": tok_hash, "task": task["task"],
        "labels": task["labels"], "hyperparameters": hyper, "metrics": metrics, "trainedBy": trained_by}, args.dtype)
    summary = {"memory": args.out, "bytes": nbytes, "seconds": seconds, "steps": step, "bestEpoch": best_epoch,
               "metrics": best_metrics, "truncated": prep["train_truncated"], "devTruncated": prep["dev_truncated"],
               "task": task["task"], "labels": task["labels"], "history": history, "trainedBy": trained_by}
    text = ", ".join("%s %.4f" % kv for kv in best_metrics.items())
    out.result(summary, "saved %s (%d KiB) after %d steps in %.1f s on %d rank(s)%s" % (
        args.out, nbytes // 1024, step, seconds, group.world_size,
        "; dev %s (epoch %d)" % (text, best_epoch) if text else ""))
    return 0


def eval_command(args):
    """`eval`: metrics of a memory on a labelled file, on one process (as `spartan eval`)."""
    started = time.time()
    out = Output(args.json)
    if args.quantize != "none":
        raise SpartanError("--quantize %s: the int8 backbone is the engine's (spartan eval --quantize int8); "
                           "this evaluator computes in float32" % args.quantize)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device if args.device == "cpu" else "cuda")
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.compute_dtype]
    backbone_dir = resolve_backbone(args.backbone)
    name, sha, tok_hash = backbone_identity(backbone_dir)
    tensors, meta = load_memory(args.memory, sha, name)
    if meta["tokenizerHash"] and meta["tokenizerHash"] != tok_hash:
        raise SpartanError("%s was trained with a different tokenizer than %s's" % (args.memory, name))
    max_length = int(meta["hyperparameters"].get("maxLength", 128))
    data = load_rows(args.data, backbone_dir, max_length, args.skip_invalid, args.spartan_cli, args.node)
    if data.header["max_length"] != max_length:
        raise SpartanError("%s was encoded with --max-length %d but the memory uses %d" % (
            args.data, data.header["max_length"], max_length))
    task = {"task": meta["task"], "labels": meta["labels"]}
    if task["task"] not in ("classification", "regression"):
        raise SpartanError("%s is a %s memory; the PyTorch trainer evaluates classification and regression only "
                           "(use `spartan eval`)" % (args.memory, task["task"]))
    if task["task"] == "classification":
        require_dev_labels(data.rows, task["labels"], args.data, "labels the memory does not know")
    examples = examples_of(data, task)
    cfg, T = load_backbone(backbone_dir, dtype)
    T.update({k: v.to(dtype) for k, v in tensors.items()})
    T = {k: v.to(device) for k, v in T.items()}
    mname, geo, _ = geometry_of(meta)
    geom = Geometry(geo["parents"], geo["children"], geo["topK"], geo["temperature"])
    num_labels = 1 if task["task"] == "regression" else len(task["labels"])
    metrics, logits = evaluate(T, cfg, geom, mname, examples, task["task"], num_labels, args.batch_size,
                               data.header["pad_id"], device)
    seconds = time.time() - started
    result = dict(metrics, rows=len(examples), truncated=data.truncated, seconds=seconds)
    if args.predictions:
        result["predictions"] = [{"line": e[2], "logits": l} for e, l in zip(examples, logits)]
    out.result(result, "%s: %d rows  %s" % (args.data, len(examples), "  ".join("%s %.4f" % kv for kv in metrics.items())))
    return 0
