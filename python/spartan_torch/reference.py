#!/usr/bin/python3
"""PyTorch reference for the Spartan engine: RoBERTa (Hugging Face RobertaForSequenceClassification semantics,
eval mode) with a SPARTAN memory after every encoder layer. Self-contained: reads/writes safetensors itself and
implements RoBERTa in torch (no `transformers`). Computes in float64.

Run with Debian's interpreter and python3-torch (scripts/install-torch.sh installs them):

  /usr/bin/python3 test/reference/spartan_torch.py grads --backbone DIR --memory M.safetensors \
      --batch batch.json --out OUT.safetensors [--parents 16] [--children 3] [--top-k 8] [--temperature 1.6] \
      [--threads 2] [--hidden] [--out-dtype F32|F64]
  /usr/bin/python3 test/reference/spartan_torch.py forward ...same flags...   (logits + loss only, no grads)
  /usr/bin/python3 test/reference/spartan_torch.py selftest [--threads 2]      (also: --selftest)

batch.json: {"input_ids": [[...]], "attention_mask": [[...]], "position_ids": [[...]], "labels": [...],
             "task": "classification" | "regression"}   (token_type_ids are all 0; position ids are used as given)
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

# ----------------------------------------------------------------------------------------------------------------
# safetensors I/O
# ----------------------------------------------------------------------------------------------------------------

_ST_DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2), "F64": (np.float64, 8), "BF16": (None, 2),
              "I64": (np.int64, 8), "I32": (np.int32, 4)}


def read_safetensors(path, dtype=torch.float64):
    """Returns (tensors: dict name -> torch tensor of `dtype`, metadata: dict or {})."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: not a safetensors file (shorter than 8 bytes)" % path)
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError("%s: header length %d exceeds the file size" % (path, n))
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    out = {}
    for name, info in header.items():
        dt = info["dtype"]
        shape = list(info["shape"])
        b, e = info["data_offsets"]
        if dt not in _ST_DTYPES:
            raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, dt))
        npdt, size = _ST_DTYPES[dt]
        count = int(np.prod(shape)) if shape else 1
        if e - b != count * size or e > len(data):
            raise ValueError("%s: tensor %s has inconsistent data offsets" % (path, name))
        buf = data[b:e]
        if dt == "BF16":
            u16 = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = u16.view(np.float32)
        else:
            arr = np.frombuffer(buf, dtype=np.dtype(npdt).newbyteorder("<"))
        arr = arr.astype(np.float64 if dtype == torch.float64 else np.float32).reshape(shape)
        out[name] = torch.from_numpy(arr.copy()).to(dtype)
    return out, meta


def write_safetensors(path, tensors, metadata=None, dtype="F32"):
    """Writes `tensors` (dict name -> tensor/array) as F32 (or F64 / F16) safetensors, names sorted."""
    npdt = {"F32": "<f4", "F64": "<f8", "F16": "<f2"}[dtype]
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name]
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().to(torch.float64).numpy()
        arr = np.ascontiguousarray(np.asarray(t, dtype=np.float64).astype(npdt))
        b = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------------------------
# names
# ----------------------------------------------------------------------------------------------------------------

def canonical_name(name):
    """Adds the `roberta.` prefix to backbone names that lack it."""
    if name.startswith("embeddings.") or name.startswith("encoder.") or name.startswith("pooler."):
        return "roberta." + name
    return name


def L(i):
    return "roberta.encoder.layer.%d." % i


MEMORY_SUFFIXES = ("spartan_experts.weight", "spartan.weight", "spartan_value.weight")
HEAD_NAMES = ("classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight",
              "classifier.out_proj.bias")
ADAPTER_SUFFIXES = ("down.weight", "down.bias", "up.weight", "up.bias")
METHODS = ("spartan", "pfeiffer", "houlsby", "head", "full")
# Where each adapter method puts a bottleneck adapter: after the feed-forward block (`output`, Pfeiffer) and, for
# Houlsby, also after the attention block (`attention.output`).
ADAPTER_BLOCKS = {"pfeiffer": ("output",), "houlsby": ("attention.output", "output")}


def layer_norm_names(n_layers):
    names = ["roberta.embeddings.LayerNorm.weight", "roberta.embeddings.LayerNorm.bias"]
    for i in range(n_layers):
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            names += [L(i) + ln + ".weight", L(i) + ln + ".bias"]
    return names


def memory_names(n_layers):
    return [L(i) + s for i in range(n_layers) for s in MEMORY_SUFFIXES]


def adapter_prefix(i, block):
    return L(i) + block + ".adapter"


def adapter_names(n_layers, method):
    return [adapter_prefix(i, blk) + "." + s for i in range(n_layers) for blk in ADAPTER_BLOCKS.get(method, ())
            for s in ADAPTER_SUFFIXES]


def trainable_known_names(n_layers, method="spartan", cfg=None):
    """The names a memory file of `method` may hold (every one of them is trained)."""
    names = set(HEAD_NAMES) | set(layer_norm_names(n_layers))
    if method == "spartan":
        names |= set(memory_names(n_layers))
    elif method in ADAPTER_BLOCKS:
        names |= set(adapter_names(n_layers, method))
    elif method == "full":
        names |= set(backbone_expected(cfg))
    return names


def infer_method(names):
    """The method of a memory file, from its tensor names (canonical or not)."""
    names = [canonical_name(n) for n in names]
    if any(n.endswith(MEMORY_SUFFIXES) for n in names):
        return "spartan"
    if any(".attention.output.adapter." in n for n in names):
        return "houlsby"
    if any(".output.adapter." in n for n in names):
        return "pfeiffer"
    if "roberta.embeddings.word_embeddings.weight" in names:
        return "full"
    return "head"


# ----------------------------------------------------------------------------------------------------------------
# config
# ----------------------------------------------------------------------------------------------------------------

class Config:
    def __init__(self, d):
        self.vocab_size = int(d.get("vocab_size", 50265))
        self.hidden_size = int(d["hidden_size"])
        self.num_hidden_layers = int(d["num_hidden_layers"])
        self.num_attention_heads = int(d["num_attention_heads"])
        self.intermediate_size = int(d["intermediate_size"])
        self.layer_norm_eps = float(d.get("layer_norm_eps", 1e-5))
        self.max_position_embeddings = int(d.get("max_position_embeddings", 514))
        self.type_vocab_size = int(d.get("type_vocab_size", 1))
        self.pad_token_id = int(d.get("pad_token_id", 1))
        self.hidden_act = d.get("hidden_act", "gelu")
        if self.hidden_act != "gelu":
            raise ValueError("hidden_act %r is not supported (only exact erf 'gelu')" % self.hidden_act)
        pet = d.get("position_embedding_type", "absolute")
        if pet != "absolute":
            raise ValueError("position_embedding_type %r is not supported" % pet)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size is not a multiple of num_attention_heads")


class Geometry:
    def __init__(self, parents=16, children=3, top_k=8, temperature=1.6):
        self.parents = int(parents)
        self.children = int(children)
        self.top_k = int(top_k)
        self.temperature = float(temperature)
        if not (1 <= self.top_k <= self.parents):
            raise ValueError("top-k %d must be in 1..parents (%d)" % (self.top_k, self.parents))
        if self.children < 1 or self.temperature <= 0:
            raise ValueError("children must be >= 1 and temperature > 0")


# ----------------------------------------------------------------------------------------------------------------
# SPARTAN memory
# ----------------------------------------------------------------------------------------------------------------

def spartan_memory(x, experts, keys, values, n_children, top_k, temperature):
    """x [B,T,d]; experts P [Np,d]; keys CK [Np*Nc,d]; values CV [Np*Nc,d]. Returns x + sum_p g_p v_p.

    parent logits s = x P^T, all but the top-K per token set to -inf, g = softmax(s) over parents;
    child logits c = x CK^T / tau viewed [.., Np, Nc], a = softmax over each parent's Nc children;
    v_p = sum_j a[p,j] CV[p*Nc+j].  Unselected parents have g_p = 0 exactly, so computing every parent's
    children densely gives the same value and the same gradients as gathering only the selected ones.
    """
    n_parents = experts.shape[0]
    s = torch.matmul(x, experts.t())                                  # [B,T,Np]
    if top_k < n_parents:
        idx = torch.topk(s, top_k, dim=-1).indices                    # [B,T,K]
        keep = torch.zeros_like(s, dtype=torch.bool).scatter(-1, idx, True)
        s = s.masked_fill(~keep, float("-inf"))
    g = torch.softmax(s, dim=-1)                                      # [B,T,Np]
    c = torch.matmul(x, keys.t()) / temperature                       # [B,T,Np*Nc]
    c = c.reshape(x.shape[:-1] + (n_parents, n_children))
    a = torch.softmax(c, dim=-1)                                      # [B,T,Np,Nc]
    w = (g.unsqueeze(-1) * a).reshape(x.shape[:-1] + (n_parents * n_children,))  # g_p * a_pj
    return x + torch.matmul(w, values)                                # sum_p g_p sum_j a_pj CV_pj


def spartan_memory_naive(x, experts, keys, values, n_children, top_k, temperature):
    """Loop-per-token, per-selected-parent version (for the self-test only)."""
    B, T, d = x.shape
    out = x.clone()
    for b in range(B):
        for t in range(T):
            xt = x[b, t]
            s = experts @ xt
            top = torch.topk(s, top_k).indices.tolist()
            g = torch.softmax(s[top], dim=0)
            acc = torch.zeros(d, dtype=x.dtype)
            for gi, p in zip(g, top):
                rows = slice(p * n_children, (p + 1) * n_children)
                a = torch.softmax((keys[rows] @ xt) / temperature, dim=0)
                acc = acc + gi * (a @ values[rows])
            out[b, t] = xt + acc
    return out


class SpartanMemory(torch.nn.Module):
    """The SPARTAN memory of one layer as a module: parameters `experts` (P), `keys` (CK), `values` (CV)."""

    def __init__(self, experts, keys, values, n_children, top_k, temperature, trainable=True):
        super().__init__()
        self.experts = torch.nn.Parameter(experts.clone(), requires_grad=trainable)
        self.keys = torch.nn.Parameter(keys.clone(), requires_grad=trainable)
        self.values = torch.nn.Parameter(values.clone(), requires_grad=trainable)
        self.n_children = n_children
        self.top_k = top_k
        self.temperature = temperature
        if keys.shape[0] != experts.shape[0] * n_children or values.shape != keys.shape:
            raise ValueError("SPARTAN shapes disagree: P %s, CK %s, CV %s, Nc %d"
                             % (tuple(experts.shape), tuple(keys.shape), tuple(values.shape), n_children))

    @staticmethod
    def random(n_parents, n_children, d, top_k, temperature, generator=None, dtype=torch.float32, std=0.02):
        P = torch.randn(n_parents, d, generator=generator, dtype=dtype) * std
        CK = torch.randn(n_parents * n_children, d, generator=generator, dtype=dtype) * std
        CV = torch.randn(n_parents * n_children, d, generator=generator, dtype=dtype) * std
        return SpartanMemory(P, CK, CV, n_children, top_k, temperature)

    def forward(self, x):
        return spartan_memory(x, self.experts, self.keys, self.values, self.n_children, self.top_k,
                              self.temperature)


# ----------------------------------------------------------------------------------------------------------------
# RoBERTa (functional over a dict of canonical names -> tensors)
# ----------------------------------------------------------------------------------------------------------------

def linear(T, prefix, x):
    return F.linear(x, T[prefix + ".weight"], T[prefix + ".bias"])


def layer_norm(T, prefix, x, eps):
    return F.layer_norm(x, (x.shape[-1],), T[prefix + ".weight"], T[prefix + ".bias"], eps)


def adapter(T, prefix, x, act):
    """x + up(act(down(x))), act ReLU (Pfeiffer) or swish x*sigmoid(x) (Houlsby)."""
    z = linear(T, prefix + ".down", x)
    z = torch.relu(z) if act == "relu" else z * torch.sigmoid(z)
    return x + linear(T, prefix + ".up", z)


def roberta_layer(T, cfg, i, x, additive_mask, method="spartan"):
    """One encoder layer. `method` pfeiffer / houlsby inserts AdapterHub's bottleneck adapters:
    Pfeiffer (ReLU, feed-forward block): t = LN(h + h1); out = LN(adapter(t) + h1), the same LayerNorm twice;
    Houlsby (swish): attention block LN_att(adapter(h_att) + x), feed-forward block LN_out(adapter(h) + h1)."""
    p = L(i)
    B, S, d = x.shape
    H = cfg.num_attention_heads
    dh = d // H

    def heads(t):
        return t.view(B, S, H, dh).permute(0, 2, 1, 3)               # [B,H,S,dh]

    q = heads(linear(T, p + "attention.self.query", x))
    k = heads(linear(T, p + "attention.self.key", x))
    v = heads(linear(T, p + "attention.self.value", x))
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh) + additive_mask
    probs = torch.softmax(scores, dim=-1)
    ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(B, S, d)
    eps = cfg.layer_norm_eps
    h_att = linear(T, p + "attention.output.dense", ctx)
    if method == "houlsby":
        h_att = adapter(T, adapter_prefix(i, "attention.output"), h_att, "swish")
    attn = layer_norm(T, p + "attention.output.LayerNorm", h_att + x, eps)
    inter = F.gelu(linear(T, p + "intermediate.dense", attn))         # exact erf GELU
    h = linear(T, p + "output.dense", inter)
    if method == "pfeiffer":
        t = layer_norm(T, p + "output.LayerNorm", h + attn, eps)      # original_ln_before
        return layer_norm(T, p + "output.LayerNorm", adapter(T, adapter_prefix(i, "output"), t, "relu") + attn,
                          eps)                                        # original_ln_after
    if method == "houlsby":
        h = adapter(T, adapter_prefix(i, "output"), h, "swish")
    return layer_norm(T, p + "output.LayerNorm", h + attn, eps)


def model_forward(T, cfg, geom, input_ids, attention_mask, position_ids, debug=None, method="spartan"):
    """Returns logits [B,L]. T: dict canonical name -> tensor (all one float dtype). `debug`, when a dict, gets
    hidden.<i> / pre_memory.<i> tensors. Layers without memory tensors in T are plain RoBERTa layers; `method`
    pfeiffer / houlsby adds the adapters (their tensors must be in T)."""
    dtype = T["roberta.embeddings.word_embeddings.weight"].dtype
    tt = torch.zeros_like(input_ids)
    x = F.embedding(input_ids, T["roberta.embeddings.word_embeddings.weight"])
    x = x + F.embedding(tt, T["roberta.embeddings.token_type_embeddings.weight"])
    x = x + F.embedding(position_ids, T["roberta.embeddings.position_embeddings.weight"])
    x = layer_norm(T, "roberta.embeddings.LayerNorm", x, cfg.layer_norm_eps)
    # HF get_extended_attention_mask: (1 - mask) * finfo(dtype).min, broadcast over heads and queries
    additive = (1.0 - attention_mask.to(dtype))[:, None, None, :] * torch.finfo(dtype).min
    if debug is not None:
        debug["hidden.0"] = x
    for i in range(cfg.num_hidden_layers):
        x = roberta_layer(T, cfg, i, x, additive, method)
        if debug is not None:
            debug["pre_memory.%d" % i] = x
        if L(i) + "spartan_experts.weight" in T:
            x = spartan_memory(x, T[L(i) + "spartan_experts.weight"], T[L(i) + "spartan.weight"],
                               T[L(i) + "spartan_value.weight"], geom.children, geom.top_k, geom.temperature)
        if debug is not None:
            debug["hidden.%d" % (i + 1)] = x
    h = x[:, 0, :]                                                    # <s> token
    h = torch.tanh(linear(T, "classifier.dense", h))
    return linear(T, "classifier.out_proj", h)


def loss_fn(logits, labels, task):
    if task == "regression":
        return F.mse_loss(logits[:, 0], labels.to(logits.dtype))
    return F.cross_entropy(logits, labels.long())


class RobertaSpartan(torch.nn.Module):
    """RoBERTa + SPARTAN memories + classification head as a module. `tensors` maps canonical names to tensors;
    memory tensors go to SpartanMemory modules (`memories[i]`), everything else to parameters registered under
    the name with '.' replaced by '__'. `trainable(name)` decides requires_grad."""

    def __init__(self, cfg, geom, tensors, trainable=lambda name: False):
        super().__init__()
        self.cfg = cfg
        self.geom = geom
        self._names = {}
        mem = {}
        for name, t in tensors.items():
            if any(name == L(i) + s for i in range(cfg.num_hidden_layers) for s in MEMORY_SUFFIXES):
                mem[name] = t
                continue
            prm = torch.nn.Parameter(t.clone(), requires_grad=bool(trainable(name)))
            self.register_parameter(name.replace(".", "__"), prm)
            self._names[name] = prm
        self.memories = torch.nn.ModuleList()
        for i in range(cfg.num_hidden_layers):
            if L(i) + "spartan_experts.weight" in mem:
                m = SpartanMemory(mem[L(i) + "spartan_experts.weight"], mem[L(i) + "spartan.weight"],
                                  mem[L(i) + "spartan_value.weight"], geom.children, geom.top_k, geom.temperature,
                                  trainable=bool(trainable(L(i) + "spartan_experts.weight")))
            else:
                m = torch.nn.Identity()
            self.memories.append(m)

    def canonical(self):
        T = dict(self._names)
        for i, m in enumerate(self.memories):
            if isinstance(m, SpartanMemory):
                T[L(i) + "spartan_experts.weight"] = m.experts
                T[L(i) + "spartan.weight"] = m.keys
                T[L(i) + "spartan_value.weight"] = m.values
        return T

    def forward(self, input_ids, attention_mask, position_ids):
        return model_forward(self.canonical(), self.cfg, self.geom, input_ids, attention_mask, position_ids)


# ----------------------------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------------------------

def backbone_expected(cfg):
    names = ["roberta.embeddings.word_embeddings.weight", "roberta.embeddings.position_embeddings.weight",
             "roberta.embeddings.token_type_embeddings.weight"]
    names += layer_norm_names(cfg.num_hidden_layers)
    for i in range(cfg.num_hidden_layers):
        for lin in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                    "intermediate.dense", "output.dense"):
            names += [L(i) + lin + ".weight", L(i) + lin + ".bias"]
    return names


def load_backbone(directory, dtype=torch.float64):
    with open(os.path.join(directory, "config.json")) as f:
        cfg = Config(json.load(f))
    raw, _ = read_safetensors(os.path.join(directory, "model.safetensors"), dtype)
    T = {canonical_name(k): v for k, v in raw.items()}
    missing = [n for n in backbone_expected(cfg) if n not in T]
    if missing:
        raise ValueError("%s: backbone lacks %d tensors, e.g. %s" % (directory, len(missing), missing[:3]))
    return cfg, T


def warn(msg):
    print("warning: " + msg, file=sys.stderr)


def merge_memory(cfg, geom, T, memory_tensors, method=None):
    """Puts the memory file's tensors into T (replacing the backbone's tensors of the same name: LayerNorms, head,
    for `full` everything). Every tensor of the file the method uses is trainable; a name only another method uses
    is an error, a name no method uses is ignored with a warning.
    `method` None: inferred from the names. Returns (method, list of (file name, canonical name) pairs)."""
    if method is None:
        method = infer_method(memory_tensors.keys())
    if method not in METHODS:
        raise ValueError("unknown method %r (choose from %s)" % (method, ", ".join(METHODS)))
    known = trainable_known_names(cfg.num_hidden_layers, method, cfg)
    anyone = set().union(*(trainable_known_names(cfg.num_hidden_layers, m, cfg) for m in METHODS))
    trainable = []
    unknown = []
    for name, t in memory_tensors.items():
        cname = canonical_name(name)
        if cname not in known:
            if cname in anyone:
                unknown.append(name)
            else:
                warn("memory tensor %s is not known to any method; ignored" % name)
            continue
        if cname in T and not cname.endswith(MEMORY_SUFFIXES) and tuple(T[cname].shape) != tuple(t.shape):
            raise ValueError("memory tensor %s has shape %s, backbone has %s"
                             % (name, tuple(t.shape), tuple(T[cname].shape)))
        T[cname] = t
        trainable.append((name, cname))
    if unknown:
        raise ValueError("%d memory tensor(s) belong to another method than %s, e.g. %s"
                         % (len(unknown), method, sorted(unknown)[:3]))
    d = cfg.hidden_size
    if method in ADAPTER_BLOCKS:
        r = None
        for i in range(cfg.num_hidden_layers):
            for blk in ADAPTER_BLOCKS[method]:
                pre = adapter_prefix(i, blk)
                missing = [s for s in ADAPTER_SUFFIXES if pre + "." + s not in T]
                if missing:
                    raise ValueError("%s memory: layer %d lacks %s.{%s}" % (method, i, pre, ",".join(missing)))
                r = T[pre + ".down.weight"].shape[0] if r is None else r
                want = {"down.weight": (r, d), "down.bias": (r,), "up.weight": (d, r), "up.bias": (d,)}
                for s in ADAPTER_SUFFIXES:
                    if tuple(T[pre + "." + s].shape) != want[s]:
                        raise ValueError("%s.%s has shape %s, expected %s (bottleneck %d, hidden %d)"
                                         % (pre, s, tuple(T[pre + "." + s].shape), want[s], r, d))
    if method != "spartan":
        missing = [n for n in HEAD_NAMES if n not in T]
        if missing:
            raise ValueError("no classification head: %s missing from memory and backbone" % missing)
        return method, trainable
    for i in range(cfg.num_hidden_layers):
        have = [L(i) + s in T for s in MEMORY_SUFFIXES]
        if any(have) and not all(have):
            raise ValueError("layer %d has only some of the SPARTAN tensors" % i)
        if not any(have):
            warn("layer %d has no SPARTAN memory; it runs as a plain RoBERTa layer" % i)
            continue
        P, CK, CV = (T[L(i) + s] for s in MEMORY_SUFFIXES)
        np_, nc = geom.parents, geom.children
        if tuple(P.shape) != (np_, d):
            raise ValueError("layer %d: spartan_experts.weight has shape %s, expected [%d, %d] (--parents)"
                             % (i, tuple(P.shape), np_, d))
        for nm, t in (("spartan.weight", CK), ("spartan_value.weight", CV)):
            if tuple(t.shape) != (np_ * nc, d):
                raise ValueError("layer %d: %s has shape %s, expected [%d, %d] (--parents x --children)"
                                 % (i, nm, tuple(t.shape), np_ * nc, d))
    missing = [n for n in HEAD_NAMES if n not in T]
    if missing:
        raise ValueError("no classification head: %s missing from memory and backbone" % missing)
    return method, trainable


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
    if task not in ("classification", "regression"):
        raise ValueError("task must be classification or regression, got %r" % task)
    if task == "regression" and n_labels != 1:
        raise ValueError("regression needs a head with 1 output, this one has %d" % n_labels)
    if int(ids.max()) >= cfg.vocab_size or int(pos.max()) >= cfg.max_position_embeddings:
        raise ValueError("input id or position id out of range")
    labels = torch.tensor(b["labels"], dtype=dtype if task == "regression" else torch.long)
    if labels.shape != (ids.shape[0],):
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
