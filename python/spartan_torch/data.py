"""Training data for the PyTorch trainer: the engine's token ids and batches.

Rows are read, checked and tokenized by the engine (`spartan encode`, src/cli/commands/encode.ts), so a bad row
gets exactly the message `spartan train` gives and the ids are the engine's. `--data` takes either a JSONL file
(then `node dist/cli.js encode` is run on it) or a file `spartan encode` wrote (on a machine without Node: encode
on one that has it and copy the file). Batches are composed as the engine's makeBatches (seeded shuffle, length
bucketing) and padded as its padBatch (RoBERTa position ids).
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import torch

from .errors import SpartanError, describe_problems
from .rng import Rng, shuffle_in_place

ENCODED_FORMAT = "spartan-encoded"
ENCODED_VERSION = 1
# Examples per bucketing chunk = batch size x this (src/engine/data/batching.ts BUCKET_CHUNK_BATCHES).
BUCKET_CHUNK_BATCHES = 50
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class EncodedData:
    """An encoded file: `header` (source, tokenizer_hash, max_length, pad_id, task, ...) and `rows`, each a dict
    {line, ids, label, truncated} (line: the row's line in the source JSONL file)."""

    def __init__(self, path, header, rows):
        self.path = path
        self.header = header
        self.rows = rows

    @property
    def source(self):
        return self.header.get("source", self.path)

    @property
    def truncated(self):
        return sum(1 for r in self.rows if r["truncated"])

    def task(self):
        """The task this file defines as training data (as `spartan train` infers it)."""
        t = self.header.get("task")
        if t is None:
            raise SpartanError(self.header.get("task_error") or "%s: no task could be inferred" % self.source)
        return t


def is_encoded(path):
    """Whether `path` is a file `spartan encode` wrote (its first line is the header object)."""
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
        return json.loads(first).get("format") == ENCODED_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_encoded(path):
    """Reads a `spartan encode` file; every problem names the file and its line."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        raise SpartanError("%s: file not found" % path)
    except OSError as e:
        raise SpartanError("%s: cannot read: %s" % (path, e))
    try:
        header = json.loads(lines[0])
    except ValueError as e:
        raise SpartanError("%s:1: not a `spartan encode` file (invalid JSON header: %s)" % (path, e))
    if not isinstance(header, dict) or header.get("format") != ENCODED_FORMAT:
        raise SpartanError('%s:1: not a `spartan encode` file (no "format": "%s" header)' % (path, ENCODED_FORMAT))
    if header.get("version") != ENCODED_VERSION:
        raise SpartanError("%s:1: encoded format version %s is not supported (this trainer reads version %d)"
                           % (path, header.get("version"), ENCODED_VERSION))
    for key in ("tokenizer_hash", "max_length", "pad_id"):
        if key not in header:
            raise SpartanError("%s:1: the header lacks %r" % (path, key))
    rows = []
    for n, text in enumerate(lines[1:], start=2):
        if not text.strip():
            continue
        try:
            r = json.loads(text)
        except ValueError as e:
            raise SpartanError("%s:%d: invalid JSON: %s" % (path, n, e))
        ids = r.get("ids") if isinstance(r, dict) else None
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and i >= 0 for i in ids):
            raise SpartanError('%s:%d: "ids" must be a non-empty list of token ids' % (path, n))
        if len(ids) > header["max_length"]:
            raise SpartanError("%s:%d: %d ids exceed the header's max_length %d" % (path, n, len(ids), header["max_length"]))
        label = r.get("label")
        if isinstance(label, bool) or not isinstance(label, (str, int, float, list)):
            raise SpartanError('%s:%d: "label" must be a string, a number or a list of names' % (path, n))
        rows.append({"line": int(r.get("line", n)), "ids": ids, "label": label, "truncated": bool(r.get("truncated"))})
    if not rows:
        raise SpartanError("%s has no rows" % path)
    if header.get("rows") is not None and header["rows"] != len(rows):
        raise SpartanError("%s: the header says %d rows but the file has %d (truncated copy?)" % (path, header["rows"], len(rows)))
    return EncodedData(path, header, rows)


def spartan_cli_command(cli=None, node=None):
    """How to run the engine's CLI: `--spartan-cli` / $SPARTAN_CLI (a .js file is run with node), else this
    repository's dist/cli.js, else `spartan` on PATH."""
    cli = cli or os.environ.get("SPARTAN_CLI")
    if not cli:
        built = os.path.join(REPO_ROOT, "dist", "cli.js")
        cli = built if os.path.exists(built) else shutil.which("spartan")
    if not cli:
        raise SpartanError("cannot tokenize: no Spartan CLI found (build it with `npm run build`, put `spartan` on PATH, "
                           "pass --spartan-cli, or give --data a file written by `spartan encode`)")
    if cli.endswith(".js"):
        return [node or os.environ.get("NODE") or "node", cli]
    return [cli]


def encode_with_cli(path, backbone_dir, max_length, skip_invalid=False, cli=None, node=None):
    """Runs `spartan encode` on a JSONL file; its user errors (file:line messages) become SpartanErrors unchanged."""
    cmd = spartan_cli_command(cli, node)
    with tempfile.TemporaryDirectory(prefix="spartan-encode-") as tmp:
        out = os.path.join(tmp, "encoded.jsonl")
        args = cmd + ["encode", "--data", path, "--backbone", backbone_dir, "--max-length", str(max_length),
                      "--out", out, "--json"] + (["--skip-invalid"] if skip_invalid else [])
        try:
            r = subprocess.run(args, capture_output=True, text=True)
        except OSError as e:
            raise SpartanError("cannot run the Spartan CLI (%s): %s" % (" ".join(cmd), e))
        if r.returncode != 0:
            message = r.stderr.strip()
            try:
                message = json.loads(r.stdout.strip().splitlines()[-1])["error"]
            except (ValueError, IndexError, KeyError, TypeError):
                if message.startswith("spartan: "):
                    message = message[len("spartan: "):]
            if r.returncode == 1:
                raise SpartanError(message)
            raise RuntimeError("spartan encode failed (exit %d): %s" % (r.returncode, message))
        for line in r.stderr.splitlines():           # skipped-row warnings
            print(line, file=sys.stderr)
        data = read_encoded(out)
    data.path = path
    return data


def load_rows(path, backbone_dir, max_length, skip_invalid=False, cli=None, node=None):
    """An EncodedData for `path`: read as is when `spartan encode` wrote it, else encoded by the engine's CLI."""
    if not os.path.exists(path):
        raise SpartanError("%s: file not found" % path)
    if is_encoded(path):
        return read_encoded(path)
    return encode_with_cli(path, backbone_dir, max_length, skip_invalid, cli, node)


def check_dev_labels(rows, labels, dev_file):
    """As the engine's checkDevLabels: dev rows whose label the model cannot score (`labels` empty: regression)."""
    known = set(labels)
    problems = []

    def add(line, message):
        problems.append({"file": dev_file, "line": line, "message": message})

    for r in rows:
        label = r["label"]
        if isinstance(label, list):
            add(r["line"], "label %s is a list (multi-label), but the training file has one label per row" % js(label))
        elif not labels:
            if isinstance(label, str):
                add(r["line"], "label %s is not a number, but the training file is a regression task" % js(label))
        elif not isinstance(label, str):
            add(r["line"], "label %s is a number, but the training labels are strings (%s)"
                % (js_number(label), ", ".join(js(l) for l in labels)))
        elif label not in known:
            add(r["line"], "label %s does not occur in the training file" % js(label))
    return problems


def require_dev_labels(rows, labels, dev_file, what="labels the training file does not have"):
    unknown = check_dev_labels(rows, labels, dev_file)
    if unknown:
        raise SpartanError("%s: %s:\n%s" % (dev_file, what, describe_problems(unknown)))


def js(value):
    """JSON.stringify of a string, number or list."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def js_number(x):
    """A number as JavaScript prints it (2, not 2.0)."""
    return str(int(x)) if isinstance(x, float) and x.is_integer() and abs(x) < 1e21 else str(x)


def examples_of(data, task):
    """(ids, label index or target, line) per row, as the engine's encodeExamples."""
    index = {name: i for i, name in enumerate(task["labels"])}
    out = []
    for r in data.rows:
        if task["task"] == "regression":
            if not isinstance(r["label"], (int, float)):
                raise SpartanError("%s:%d: label %s is not a number, but the task is regression"
                                   % (data.source, r["line"], js(r["label"])))
            label = float(r["label"])
        else:
            if r["label"] not in index or not isinstance(r["label"], str):
                raise SpartanError("%s:%d: label %s is not one of the task's labels (%s)" % (
                    data.source, r["line"], js(r["label"]), ", ".join(js(l) for l in task["labels"])))
            label = index[r["label"]]
        out.append((r["ids"], label, r["line"]))
    return out


def split_dev_share(rows, share, seed, regression):
    """`--dev-share` as the engine's splitRows (src/engine/data/devSplit.ts): per label (one group for regression),
    in order of first appearance, a seeded shuffle holds out round(n * share) rows, always leaving one for training;
    with nothing held out, one random training row moves to dev. Both parts keep the file order."""
    if not share > 0 or len(rows) < 2:
        return list(rows), []
    rng = Rng(seed)
    groups = {}
    for r in rows:
        label = r["label"]
        key = "" if regression else (js(sorted(label)) if isinstance(label, list) else
                                     label if isinstance(label, str) else js_number(label))
        groups.setdefault(key, []).append(r)
    dev, train = [], []
    for group in groups.values():
        idx = shuffle_in_place(list(range(len(group))), rng)
        n = min(int(math.floor(len(group) * share + 0.5)), len(group) - 1)
        take = set(idx[:n])
        for i, r in enumerate(group):
            (dev if i in take else train).append(r)
    if not dev:
        dev.append(train.pop(int(math.floor(rng.next() * len(train)))))
    return sorted(train, key=lambda r: r["line"]), sorted(dev, key=lambda r: r["line"])


def make_batches(lengths, batch_size, shuffle, seed, bucket):
    """The engine's makeBatches: the same (lengths, batch size, options) give the same batches of indices."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise SpartanError("batch size must be a positive integer, got %s" % batch_size)
    rng = Rng(seed)
    order = list(range(len(lengths)))
    if shuffle:
        shuffle_in_place(order, rng)
    if bucket:
        chunk = batch_size * BUCKET_CHUNK_BATCHES
        batches = []
        for start in range(0, len(order), chunk):
            part = sorted(order[start:start + chunk], key=lambda i: lengths[i])    # stable, as Array.sort
            batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
        if shuffle:
            shuffle_in_place(batches, rng)
        return batches
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def rank_share(indices, rank, world_size):
    """This rank's rows of a global batch: every world_size-th, from position `rank` (the distributed sampler; every
    rank composes the same global batches from the same seed, so together they cover each batch exactly once)."""
    return indices[rank::world_size]


def pad_batch(examples, pad_id, dtype=torch.float32):
    """The engine's padBatch: right-padded ids, mask, RoBERTa position ids (pad + 1 + index), labels."""
    B = len(examples)
    T = max(len(e[0]) for e in examples)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    pos = torch.full((B, T), pad_id, dtype=torch.long)
    for b, (tokens, _, _) in enumerate(examples):
        n = len(tokens)
        ids[b, :n] = torch.tensor(tokens, dtype=torch.long)
        mask[b, :n] = 1
        pos[b, :n] = torch.arange(pad_id + 1, pad_id + 1 + n)
    labels = torch.tensor([e[1] for e in examples], dtype=torch.float64)
    return ids, mask, pos, labels
