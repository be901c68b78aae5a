"""How much a pretraining checkpoint's frozen features know: logistic regression on SST-2 sentence features.

    /usr/bin/python3 scripts/pretrain-embedded/probe.py --work WORK --train train.ids.jsonl --dev dev.ids.jsonl

Features: the last layer's <s> vector, and the mean of each layer's token vectors; also the mean of the
initial corpus-statistics vectors (the bag-of-words floor). A diagnostic for the recipe, not a product check:
the product's check is scripts/sst2-check.sh (SPARTAN memories through the engine).
"""
import argparse, json, os, sys
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pretrain as P  # noqa: E402


def read(path):
    rows = [json.loads(l) for l in open(path)]
    return [r["ids"] for r in rows], torch.tensor([r["label"] for r in rows])


def batches(seqs, n=64):
    for s in range(0, len(seqs), n):
        chunk = seqs[s:s + n]
        L = max(map(len, chunk))
        x = torch.full((len(chunk), L), P.PAD, dtype=torch.long)
        for i, q in enumerate(chunk):
            x[i, :len(q)] = torch.tensor(q)
        yield x


def features(model, seqs, vectors):
    out = {"cls_last": [], "mean_last": [], "mean_l1": [], "bow_init": []}
    with torch.no_grad():
        for x in batches(seqs):
            mask = (x != P.PAD)
            pos = torch.cumsum(mask.long(), 1) * mask.long() + P.PAD
            h = model.emb_ln(model.word(x) + model.pos(pos) + model.tok_type.weight[0])
            bias = (~mask)[:, None, None, :].float() * -1e9
            m = mask[..., None].float()
            hs = []
            for layer in model.layers:
                h = layer(h, bias)
                hs.append(h)
            out["cls_last"].append(hs[-1][:, 0])
            out["mean_last"].append((hs[-1] * m).sum(1) / m.sum(1))
            out["mean_l1"].append((hs[0] * m).sum(1) / m.sum(1))
            out["bow_init"].append((vectors[x] * m).sum(1) / m.sum(1))
    return {k: torch.cat(v) for k, v in out.items()}


def logreg(xtr, ytr, xdv, ydv, epochs=300):
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xdv = (xtr - mu) / sd, (xdv - mu) / sd
    w = torch.zeros(xtr.shape[1], 2, requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=epochs)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xtr @ w + b, ytr) + 1e-3 * (w ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return float(((xdv @ w + b).argmax(1) == ydv).float().mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    model = P.Roberta(P.Config())
    ck = torch.load(os.path.join(a.work, "checkpoint.pt"))
    model.load_state_dict(ck["model"])
    model.eval()
    vectors, _ = torch.load(os.path.join(a.work, "ppmi_vectors.pt"))
    (tr, ytr), (dv, ydv) = read(a.train), read(a.dev)
    ftr, fdv = features(model, tr, vectors), features(model, dv, vectors)
    res = {k: round(logreg(ftr[k], ytr, fdv[k], ydv), 4) for k in ftr}
    print(json.dumps({"step": ck["step"], "train_rows": len(tr), **res}))


if __name__ == "__main__":
    main()
