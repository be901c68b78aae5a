"""Token vectors from corpus statistics, to initialise the embedded backbone's word embeddings.

Why: masked-LM training on 2 CPU cores sees a few million tokens, far too few to learn word meaning from
scratch; positive PMI over a +-4 token window, factorised by truncated SVD, gives every frequent BPE token a
vector whose neighbours are its synonyms after one pass over the corpus (a couple of CPU minutes). MLM training
then starts from embeddings that already carry lexical meaning and spends its steps on context.

Recipe (Levy, Goldberg & Dagan 2015): co-occurrence counts of every token (rows) with the `contexts` most
frequent tokens (columns) within `window` positions, weighted 1/distance; PPMI with context-distribution
smoothing alpha = 0.75; rank-`dim` SVD (randomised, torch.svd_lowrank); vectors U * sqrt(S). Rows of tokens seen
fewer than `min_count` times keep a small random vector.
"""
import numpy as np
import torch


def ppmi_svd_vectors(ids: np.ndarray, vocab_size: int, dim: int, *, window: int = 4, contexts: int = 10000,
                     min_count: int = 5, seed: int = 0, log=print) -> torch.Tensor:
    ids = ids.astype(np.int64)
    counts = np.bincount(ids, minlength=vocab_size)
    order = np.argsort(-counts, kind="stable")
    ctx_ids = order[:contexts]
    ctx_index = np.full(vocab_size, -1, dtype=np.int64)
    ctx_index[ctx_ids] = np.arange(len(ctx_ids))

    cidx = ctx_index[ids]
    codes, weights = [], []
    for k in range(1, window + 1):
        # token at i with context at i+k, and token at i+k with context at i, weighted 1/distance
        for rows, cols in ((ids[:-k], cidx[k:]), (ids[k:], cidx[:-k])):
            keep = cols >= 0
            codes.append(rows[keep] * contexts + cols[keep])
            weights.append(np.full(int(keep.sum()), 1.0 / k, dtype=np.float32))
    # one weighted bincount over every pair: a single pass over the 50,265 x contexts cells
    cooc = np.bincount(np.concatenate(codes), weights=np.concatenate(weights),
                       minlength=vocab_size * contexts).astype(np.float32)
    del codes, weights
    log(f"co-occurrence counts: {float(cooc.sum()):.3g} weighted pairs")
    m = torch.from_numpy(cooc.reshape(vocab_size, contexts))
    del cooc
    total = m.sum()
    row = m.sum(1, keepdim=True)
    col = m.sum(0, keepdim=True).pow(0.75)
    col = col / col.sum()
    # PPMI: max(0, log(p(w,c) / (p(w) * p_alpha(c))))
    with torch.no_grad():
        m.div_(total).div_(row.div(total).clamp_min(1e-30)).div_(col.clamp_min(1e-30))
        m.clamp_min_(1e-30).log_().clamp_min_(0.0)
    rare = torch.from_numpy(counts < min_count)
    m = m[~rare]  # only frequent tokens get a row: a smaller matrix for the SVD, and no noise from rare rows
    log(f"PPMI matrix {tuple(m.shape)}, nonzero share {float((m > 0).float().mean()):.4f}")
    torch.manual_seed(seed)
    u, s, _ = torch.svd_lowrank(m, q=dim + 16, niter=3)
    vectors = torch.zeros(vocab_size, dim)
    vectors[~rare] = (u * s.sqrt())[:, :dim]
    # Same overall scale for every frequent row, so that LayerNorm after the embedding sum sees comparable inputs.
    vectors = vectors / vectors[~rare].std()
    g = torch.Generator().manual_seed(seed)
    vectors[rare] = torch.randn(int(rare.sum()), dim, generator=g) * 0.5
    log(f"vectors: {int((~rare).sum())} tokens from corpus statistics, {int(rare.sum())} random")
    return vectors.float(), torch.from_numpy(counts)
