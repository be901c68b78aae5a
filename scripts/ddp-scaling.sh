#!/usr/bin/env bash
# Scaling of the PyTorch trainer (python/spartan_torch) from 1 to N gloo ranks on this machine, at roberta-base
# geometry (synthetic weights, saved once as a backbone folder), batch 16 x 128 tokens, dropout 0, a few steps.
# Prints per-run step throughput (the first step is warm-up and left out) and the efficiency
#   throughput(N ranks x 1 thread) / (N x throughput(1 rank x 1 thread)),
# plus 1 rank x N threads on the same cores. Not a test: run it on a quiet machine.
#   bash scripts/ddp-scaling.sh [RANKS=2] [STEPS=4] [WORK=/tmp/spartan-ddp-scaling]
# (SPEC=synthetic:tiny checks the plumbing in seconds.)
set -euo pipefail
cd "$(dirname "$0")/.."
RANKS=${1:-2}
STEPS=${2:-4}
WORK=${3:-/tmp/spartan-ddp-scaling}
SPEC=${SPEC:-synthetic:roberta-base@1}
PY=/usr/bin/python3
WORK="$WORK/${SPEC//[:@]/-}"
mkdir -p "$WORK"
[ -f dist/cli.js ] || npm run --silent build

if [ ! -f "$WORK/backbone/model.safetensors" ]; then
  node --import tsx -e "
    const { loadBackbone, saveBackboneDir } = require('./src/engine/models/backbone');
    loadBackbone('$SPEC').then((b) => saveBackboneDir(b, '$WORK/backbone', 'float32'));"
fi
# 64 rows longer than 128 tokens, so every batch is 16 x 128 after truncation.
$PY - "$WORK/rows.jsonl" <<'EOF'
import json, sys
words = "the film was a long and winding story about people who talk and walk and think about many things".split()
with open(sys.argv[1], "w") as f:
    for i in range(64):
        text = " ".join(words[(i + k) % len(words)] for k in range(200))
        f.write(json.dumps({"text": text, "label": "pos" if i % 2 else "neg"}) + "\n")
EOF
node dist/cli.js encode --backbone "$WORK/backbone" --data "$WORK/rows.jsonl" --max-length 128 --out "$WORK/rows.ids.jsonl" >/dev/null

ARGS=(train --backbone "$WORK/backbone" --data "$WORK/rows.ids.jsonl" --out "$WORK/m.safetensors" --steps "$STEPS"
      --batch-size 16 --dropout 0 --json)

# examples/s over steps 2..STEPS of a run's JSON step events (stderr of rank 0)
rate() { $PY -c "
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
st = [e for e in ev if e.get('event') == 'step'][1:]
print('%.3f' % (sum(16 for e in st) / sum(16 / e['examplesPerSecond'] for e in st)))" "$1"; }

run_ranks() {  # ranks threads log
  local n=$1 threads=$2 log=$3 port
  port=$($PY -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  local pids=()
  for ((r = 0; r < n; r++)); do
    if [ "$n" -gt 1 ]; then
      env MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" RANK=$r WORLD_SIZE="$n" LOCAL_RANK=$r LOCAL_WORLD_SIZE="$n" PYTHONPATH=python \
        $PY -m spartan_torch "${ARGS[@]}" --threads "$threads" >/dev/null 2>"$log.$r" &
    else
      PYTHONPATH=python $PY -m spartan_torch "${ARGS[@]}" --threads "$threads" >/dev/null 2>"$log.$r" &
    fi
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  rate "$log.0"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
one=$(run_ranks 1 1 "$WORK/one-1t")
echo "1 rank  x 1 thread : $one examples/s"
many=$(run_ranks "$RANKS" 1 "$WORK/ranks-1t")
echo "$RANKS ranks x 1 thread : $many examples/s"
wide=$(run_ranks 1 "$RANKS" "$WORK/one-${RANKS}t")
echo "1 rank  x $RANKS threads: $wide examples/s"
$PY -c "print('scaling efficiency 1 -> %d ranks: %.2f   (%d ranks vs 1 rank x %d threads: %.2f)' % ($RANKS, $many / ($RANKS * $one), $RANKS, $RANKS, $many / $wide))"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
