"""RoBERTa (Hugging Face RobertaForSequenceClassification semantics) with a SPARTAN memory after every encoder
layer, Pfeiffer / Houlsby adapters, head-only or full fine-tuning, written as functions of a dict of tensors
(canonical names, docs/ARCHITECTURE.md). No `transformers`. Used in float64 as the engine's test oracle
(reference.py) and in float32 by the trainer (trainer.py)."""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

from .safetensors import read_safetensors

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


def no_dropout(x):
    return x


def roberta_layer(T, cfg, i, x, additive_mask, method="spartan", drop=no_dropout):
    """One encoder layer; `drop` is applied where RoBERTa (and the engine's training graph) has dropout: attention
    probabilities, and the attention and feed-forward outputs before their residual. `method` pfeiffer / houlsby inserts AdapterHub's bottleneck adapters:
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
    probs = drop(torch.softmax(scores, dim=-1))
    ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(B, S, d)
    eps = cfg.layer_norm_eps
    h_att = drop(linear(T, p + "attention.output.dense", ctx))
    if method == "houlsby":
        h_att = adapter(T, adapter_prefix(i, "attention.output"), h_att, "swish")
    attn = layer_norm(T, p + "attention.output.LayerNorm", h_att + x, eps)
    inter = F.gelu(linear(T, p + "intermediate.dense", attn))         # exact erf GELU
    h = drop(linear(T, p + "output.dense", inter))
    if method == "pfeiffer":
        t = layer_norm(T, p + "output.LayerNorm", h + attn, eps)      # original_ln_before
        return layer_norm(T, p + "output.LayerNorm", adapter(T, adapter_prefix(i, "output"), t, "relu") + attn,
                          eps)                                        # original_ln_after
    if method == "houlsby":
        h = adapter(T, adapter_prefix(i, "output"), h, "swish")
    return layer_norm(T, p + "output.LayerNorm", h + attn, eps)


def model_forward(T, cfg, geom, input_ids, attention_mask, position_ids, debug=None, method="spartan",
                  drop=no_dropout):
    """Returns logits [B,L]. T: dict canonical name -> tensor (all one float dtype). `debug`, when a dict, gets
    hidden.<i> / pre_memory.<i> tensors. Layers without memory tensors in T are plain RoBERTa layers; `method`
    pfeiffer / houlsby adds the adapters (their tensors must be in T). `drop`: dropout, at the engine's places
    (embeddings, attention, sub-layer outputs, and twice in the head); the identity by default (eval)."""
    dtype = T["roberta.embeddings.word_embeddings.weight"].dtype
    tt = torch.zeros_like(input_ids)
    x = F.embedding(input_ids, T["roberta.embeddings.word_embeddings.weight"])
    x = x + F.embedding(tt, T["roberta.embeddings.token_type_embeddings.weight"])
    x = x + F.embedding(position_ids, T["roberta.embeddings.position_embeddings.weight"])
    x = drop(layer_norm(T, "roberta.embeddings.LayerNorm", x, cfg.layer_norm_eps))
    # HF get_extended_attention_mask: (1 - mask) * finfo(dtype).min, broadcast over heads and queries
    additive = (1.0 - attention_mask.to(dtype))[:, None, None, :] * torch.finfo(dtype).min
    if debug is not None:
        debug["hidden.0"] = x
    for i in range(cfg.num_hidden_layers):
        x = roberta_layer(T, cfg, i, x, additive, method, drop)
        if debug is not None:
            debug["pre_memory.%d" % i] = x
        if L(i) + "spartan_experts.weight" in T:
            x = spartan_memory(x, T[L(i) + "spartan_experts.weight"], T[L(i) + "spartan.weight"],
                               T[L(i) + "spartan_value.weight"], geom.children, geom.top_k, geom.temperature)
        if debug is not None:
            debug["hidden.%d" % (i + 1)] = x
    h = x[:, 0, :]                                                    # <s> token
    h = torch.tanh(linear(T, "classifier.dense", drop(h)))
    return linear(T, "classifier.out_proj", drop(h))


def loss_fn(logits, labels, task):
    if task == "regression":
        return F.mse_loss(logits[:, 0], labels.to(logits.dtype))
    if task == "multilabel":
        # labels: multi-hot [B, L]; the mean over every (row, label), as the engine's softplus(z) - t*z.
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
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

