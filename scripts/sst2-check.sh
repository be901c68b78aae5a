#!/usr/bin/env bash
# SST-2 check of the engine on the embedded backbone with the paper's defaults (3 epochs, max length 128, lr 1e-3
# for SPARTAN and the head, 1e-4 for the adapters as in the paper's setting), trained on the first ROWS training rows
# (default: all 67,349) and scored on the full dev set (872). Prints one line per method and the majority class.
#   bash scripts/sst2-check.sh [ROWS] [GLUE_DIR]     METHODS="spartan head" to choose methods, THREADS=1 per run
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-all}
GLUE=${2:-../shared/data/glue}
OUT=${OUT:-results/sst2-check}
METHODS=${METHODS:-spartan head pfeiffer houlsby}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
node bin/spartan.js glue import --task SST-2 --dir "$GLUE/SST-2" --out "$OUT/data" >/dev/null
if [ "$ROWS" = all ]; then cp "$OUT/data/train.jsonl" "$OUT/train.jsonl"; else head -n "$ROWS" "$OUT/data/train.jsonl" > "$OUT/train.jsonl"; fi
echo "training rows: $(wc -l < "$OUT/train.jsonl"), dev rows: $(wc -l < "$OUT/data/dev.jsonl")"
majority=$(node -e '
  const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const counts = {}; for (const r of rows) counts[r.label] = (counts[r.label] || 0) + 1;
  console.log((Math.max(...Object.values(counts)) / rows.length).toFixed(4));' "$OUT/data/dev.jsonl")
echo "majority class on dev: $majority"
for method in $METHODS; do
  case "$method" in pfeiffer|houlsby) lr=1e-4 ;; *) lr=1e-3 ;; esac
  node bin/spartan.js train --method "$method" --data "$OUT/train.jsonl" --dev "$OUT/data/dev.jsonl" \
    --out "$OUT/$method.safetensors" --epochs 3 --lr "$lr" --max-length 128 --patience 0 --seed 42 --threads "$THREADS" --json 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);
      console.log(`${process.argv[1]} (lr ${process.argv[2]}): dev accuracy ${r.metrics.accuracy.toFixed(4)} (best of ${r.history.length} epochs, epoch ${r.bestEpoch}), ${(r.bytes/1024).toFixed(0)} KiB, ${r.seconds.toFixed(0)} s`)})' "$method" "$lr"
done
