#!/usr/bin/env bash
# Builds the embedded backbone (models/roberta-mini) from ../shared/corpus: tokenize, pretrain (resumable), export.
#   bash scripts/pretrain-embedded/build.sh [WORK_DIR] [STEPS] [extra pretrain.py flags, e.g. --device cuda]
# Re-running resumes from WORK_DIR/checkpoint.pt. Needs Debian's python3-torch (scripts/install-torch.sh); uses
# jemalloc when installed (apt-get install libjemalloc2): glibc's malloc hands large activation buffers back to the
# kernel after each step, and the page faults that follow cost more than the model's elementwise work.
# The tokenizer files in models/roberta-mini are inputs (the published roberta-base BPE); the weights, config.json,
# PRETRAINING.md and pretraining_log.jsonl there are outputs.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-/tmp/spartan-pretrain}; STEPS=${2:-1100}; shift $(( $# > 2 ? 2 : $# ))
OUT=models/roberta-mini
mkdir -p "$WORK"
[ -f "$WORK/corpus.u16" ] || node scripts/pretrain-embedded/tokenize.mjs ../shared/corpus/corpus.txt.gz "$OUT" "$WORK/corpus.u16"
JE=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
PRELOAD=""; [ -f "$JE" ] && PRELOAD="$JE"
RESUME=""; [ -f "$WORK/checkpoint.pt" ] && RESUME="--resume"
LD_PRELOAD="$PRELOAD" /usr/bin/python3 scripts/pretrain-embedded/pretrain.py --ids "$WORK/corpus.u16" --work "$WORK" --steps "$STEPS" $RESUME "$@"
LD_PRELOAD="$PRELOAD" /usr/bin/python3 scripts/pretrain-embedded/pretrain.py --ids "$WORK/corpus.u16" --work "$WORK" --steps "$STEPS" --export "$OUT" "$@"
cp "$WORK/pretraining_log.jsonl" "$OUT/"
