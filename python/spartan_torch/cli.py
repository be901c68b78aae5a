"""`python3 -m spartan_torch train|eval` (PYTHONPATH=python): the flags, defaults and output contract of
`spartan train` / `spartan eval`, plus the distributed ones. `grads`, `forward` and `selftest` are the test
oracle's commands (reference.py)."""
import argparse
import json
import os
import signal
import sys

from .errors import SpartanError

METHODS = ["spartan", "pfeiffer", "houlsby", "head", "full"]


def int_option(minimum):
    def parse(v):
        try:
            n = int(v)
        except ValueError:
            n = None
        if n is None or n < minimum:
            raise argparse.ArgumentTypeError('expected an integer \u2265 %d, got "%s"' % (minimum, v))
        return n
    return parse


def float_option(minimum, maximum=float("inf"), inclusive_min=True):
    def parse(v):
        try:
            x = float(v)
        except ValueError:
            x = float("nan")
        ok = (x >= minimum if inclusive_min else x > minimum) and x <= maximum and x == x and x != float("inf")
        if not ok:
            raise argparse.ArgumentTypeError('expected a number in %s%s, %s], got "%s"'
                                             % ("[" if inclusive_min else "(", minimum, maximum, v))
        return x
    return parse


def default_threads():
    """The CPU cores this process may use, shared among the ranks of this machine (LOCAL_WORLD_SIZE, which
    torchrun sets; 1 otherwise)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def add_common(p):
    p.add_argument("--backbone", default="embedded", metavar="DIR|embedded",
                   help="frozen backbone: a Hugging Face folder (config.json, model.safetensors, tokenizer), or "
                        "`embedded` (models/roberta-mini) (default: %(default)s)")
    p.add_argument("--threads", type=int_option(1), default=default_threads(),
                   help="intra-op threads per rank (default: this machine's cores / LOCAL_WORLD_SIZE = %(default)s)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="use the valid rows of a file that has invalid ones (they are reported)")
    p.add_argument("--json", action="store_true", help="JSON result on stdout, JSON-lines progress on stderr")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cpu (gloo between ranks), or cuda: GPU LOCAL_RANK of this machine (NCCL) (default: %(default)s)")
    p.add_argument("--compute-dtype", choices=["float32", "float64"], default="float32",
                   help="arithmetic of the forward and backward pass (default: %(default)s, as the engine)")
    p.add_argument("--spartan-cli", metavar="FILE",
                   help="the engine's CLI that tokenizes JSONL files (`spartan encode`): a .js file run with node, or "
                        "an executable (default: $SPARTAN_CLI, else this repository's dist/cli.js, else `spartan` "
                        "on PATH); not needed when the data files were written by `spartan encode`")
    p.add_argument("--node", metavar="FILE", help="node executable for a .js CLI (default: $NODE, else node on PATH)")


def build_parser():
    ap = argparse.ArgumentParser(prog="python3 -m spartan_torch", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", metavar="train|eval|grads|forward|selftest")
    t = sub.add_parser("train", help="fine-tune a memory, on one process or data parallel over env://",
                       description="Fine-tune a task memory on a JSONL file of {\"text\", \"label\"[, \"text_pair\"]} "
                                   "rows, as `spartan train` does (same flags, defaults, checks, seeded batches and "
                                   "memory file). Started by torchrun, srun, mpirun, Ray Train or any launcher that sets "
                                   "MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK, it trains data parallel: "
                                   "--batch-size is the global batch, split over the ranks; rank 0 evaluates and writes "
                                   "the memory. --data/--dev take a JSONL file (tokenized by the engine: `node "
                                   "dist/cli.js encode`) or a file written by `spartan encode`.")
    t.add_argument("--data", required=True, metavar="FILE", help="training rows: JSONL, or a `spartan encode` file")
    t.add_argument("--out", required=True, metavar="FILE",
                   help="where to save the memory (.safetensors); written atomically, by rank 0")
    t.add_argument("--dev", metavar="FILE", help="dev rows (JSONL or encoded), evaluated after every epoch by rank 0; "
                                                 "the best epoch is kept")
    t.add_argument("--dev-share", type=float_option(0, 0.5, False), metavar="FRACTION",
                   help="hold out this share of the training rows as the dev set (when no --dev)")
    t.add_argument("--init", metavar="FILE", help="start from an existing memory (its geometry and method are used)")
    t.add_argument("--method", choices=METHODS, default="spartan", help="adaptation method (default: %(default)s)")
    t.add_argument("--parents", type=int_option(1), default=16, help="parent cells per layer, Np (default: %(default)s)")
    t.add_argument("--children", type=int_option(1), default=3, help="children per parent, Nc (default: %(default)s)")
    t.add_argument("--top-k", type=int_option(1), default=8, help="parents kept per token, K (default: %(default)s)")
    t.add_argument("--temperature", type=float_option(0, inclusive_min=False), default=1.6,
                   help="softmax temperature of the children, tau (default: %(default)s)")
    ln = t.add_mutually_exclusive_group()
    ln.add_argument("--train-layer-norms", dest="train_layer_norms", action="store_true", default=None,
                    help="train the backbone's LayerNorm parameters (default for spartan, as the authors' code)")
    ln.add_argument("--no-train-layer-norms", dest="train_layer_norms", action="store_false",
                    help="keep the backbone's LayerNorm parameters frozen (default for adapters and head)")
    t.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw",
                   help="adamw, or plain sgd (no momentum, decay, clipping or schedule) (default: %(default)s)")
    t.add_argument("--lr", type=float_option(0, inclusive_min=False), default=1e-3, help="peak learning rate (default: %(default)s)")
    t.add_argument("--weight-decay", type=float_option(0), default=0.0,
                   help="AdamW weight decay, not on biases and LayerNorms (default: %(default)s)")
    t.add_argument("--warmup", type=float_option(0, 1), default=0.06,
                   help="share of steps with linear warm-up, AdamW (default: %(default)s)")
    t.add_argument("--clip", type=float_option(0), default=1.0,
                   help="gradient-norm clipping (AdamW); 0 disables (default: %(default)s)")
    t.add_argument("--epochs", type=int_option(1), default=3, help="epochs (default: %(default)s)")
    t.add_argument("--steps", type=int_option(0), default=None,
                   help="total optimiser steps instead of epochs (0 saves the initial memory)")
    t.add_argument("--batch-size", type=int_option(1), default=16,
                   help="examples per step: the global batch, over all ranks (default: %(default)s)")
    t.add_argument("--max-length", type=int_option(4), default=None,
                   help="tokens per example, longer texts are truncated (default: 128, or the encoded file's)")
    t.add_argument("--dropout", type=float_option(0, 0.9), default=0.1,
                   help="dropout in the backbone and head while training (default: %(default)s; its masks come from "
                        "torch's generator, seeded by --seed and the rank, not the engine's)")
    t.add_argument("--seed", type=int_option(0), default=42,
                   help="seed of initialisation, shuffling and dropout (default: %(default)s)")
    t.add_argument("--no-shuffle", dest="shuffle", action="store_false", help="keep the file order (and no length bucketing)")
    t.add_argument("--no-bucket", dest="bucket", action="store_false", help="no length bucketing (batches still shuffled)")
    t.add_argument("--patience", type=int_option(0), default=3,
                   help="early stopping: evaluations without dev improvement; 0 disables (default: %(default)s)")
    t.add_argument("--metric", help="dev metric that picks the best epoch (accuracy, f1, mcc, pearson, spearman)")
    t.add_argument("--dtype", choices=["float16", "float32"], default="float16",
                   help="storage type of the memory file (default: %(default)s)")
    t.add_argument("--quantize", choices=["none", "int8"], default="none",
                   help="backbone precision; int8 is the engine's (spartan train --quantize int8): this trainer's is float32")
    t.add_argument("--backend", choices=["gloo", "nccl"],
                   help="process-group backend (default: nccl with --device cuda, else gloo)")
    add_common(t)

    e = sub.add_parser("eval", help="metrics of a memory on a labelled file, as `spartan eval`", description="Metrics of a memory on a labelled file, as `spartan eval` "
                                           "(accuracy, F1, MCC or Pearson/Spearman).")
    e.add_argument("--memory", required=True, metavar="FILE", help="the task memory (.safetensors)")
    e.add_argument("--data", required=True, metavar="FILE", help="labelled rows: JSONL, or a `spartan encode` file")
    e.add_argument("--batch-size", type=int_option(1), default=32, help="examples per forward pass (default: %(default)s)")
    e.add_argument("--predictions", action="store_true", help="also list every row's line and logits")
    e.add_argument("--quantize", choices=["none", "int8"], default="none",
                   help="backbone precision: float32 here (spartan eval --quantize none); int8 is the engine's")
    add_common(e)
    for name in ("grads", "forward", "selftest"):
        sub.add_parser(name, add_help=False, help="the engine's test oracle (see reference.py)")
    return ap


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and (argv[0] in ("grads", "forward", "selftest") or argv[0] == "--selftest"):
        from .reference import main as reference_main
        return reference_main(argv)
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    def interrupted(signum, frame):
        raise SpartanError("training interrupted; the previous memory file (if any) is untouched"
                           if args.command == "train" else "interrupted")

    # Ctrl-C, and the SIGTERM a scheduler sends on preemption or time-out: a message, not a traceback; the memory
    # is only ever replaced by a completed atomic write.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    try:
        if args.command == "train":
            from .trainer import train
            return train(args)
        from .trainer import eval_command
        return eval_command(args)
    except SpartanError as e:
        if args.json:
            print(json.dumps({"error": str(e)}), flush=True)
        print("spartan_torch: %s" % e, file=sys.stderr, flush=True)
        return 1
