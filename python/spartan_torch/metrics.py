"""The engine's dev metrics (src/engine/training/metrics.ts: scikit-learn / scipy semantics as the GLUE scripts
use them; degenerate inputs give 0, not NaN), so the numbers a memory carries mean the same whichever trainer
wrote it."""
import math


def accuracy(pred, gold):
    return sum(p == g for p, g in zip(pred, gold)) / len(gold) if gold else 0.0


def _class_f1(pred, gold, c):
    tp = sum(1 for p, g in zip(pred, gold) if p == c and g == c)
    fp = sum(1 for p, g in zip(pred, gold) if p == c and g != c)
    fn = sum(1 for p, g in zip(pred, gold) if p != c and g == c)
    d = 2 * tp + fp + fn
    return 2 * tp / d if d else 0.0


def f1(pred, gold, num_labels, positive=1):
    """Binary: F1 of class `positive`; more classes: macro average over the classes present in gold or pred."""
    if num_labels <= 2:
        return _class_f1(pred, gold, positive)
    present = set(pred) | set(gold)
    return sum(_class_f1(pred, gold, c) for c in present) / len(present) if present else 0.0


def mcc(pred, gold):
    """Matthews correlation (Gorodkin's R_K for more than two classes, as sklearn)."""
    s = len(gold)
    if s == 0:
        return 0.0
    predicted, truth = {}, {}
    c = 0
    for p, g in zip(pred, gold):
        predicted[p] = predicted.get(p, 0) + 1
        truth[g] = truth.get(g, 0) + 1
        c += p == g
    pt = sum(n * truth.get(k, 0) for k, n in predicted.items())
    pp = sum(n * n for n in predicted.values())
    tt = sum(n * n for n in truth.values())
    den = math.sqrt((s * s - pp) * (s * s - tt))
    return (c * s - pt) / den if den else 0.0


def pearson(x, y):
    n = len(x)
    if n == 0:
        return 0.0
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return 0.0
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def average_ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x, y):
    return pearson(average_ranks(x), average_ranks(y))


def mse(pred, gold):
    return sum((p - g) ** 2 for p, g in zip(pred, gold)) / len(gold) if gold else 0.0


def classification_metrics(pred, gold, num_labels, positive=1):
    return {"accuracy": accuracy(pred, gold), "f1": f1(pred, gold, num_labels, positive), "mcc": mcc(pred, gold)}


def regression_metrics(pred, gold):
    return {"pearson": pearson(pred, gold), "spearman": spearman(pred, gold), "mse": mse(pred, gold)}
