#!/usr/bin/env bash
# The whole test suite on a fresh clone (what .ci/run calls): installs what the tests need — npm packages,
# Debian's python3-torch for the PyTorch reference, code-server + Chromium for the end-to-end tests — builds,
# then runs the unit and reference tests (node --test) and the end-to-end suite in a real VS Code.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip   # its postinstall downloads CUDA files; the CPU binaries are in the package

if ! npm ls --depth=0 >/dev/null 2>&1; then npm ci --no-audit --no-fund; fi
bash scripts/install-torch.sh
npm run --silent typecheck
npm run --silent lint          # ESLint with typescript-eslint's type-aware rules
npm run --silent format:check  # Prettier
npm run --silent build

results=$(mktemp)
status=0
node --import tsx --test --test-reporter=tap test/*.test.ts test/extension/*.test.ts | tee "$results" || status=$?
unit_pass=$(grep -E '^# pass ' "$results" | tail -1 | awk '{print $3}')
unit_fail=$(grep -E '^# fail ' "$results" | tail -1 | awk '{print $3}')

e2e_pass=0; e2e_fail=0
if [ -f test/e2e/run.sh ]; then
  bash test/e2e/run.sh | tee "$results" || status=$?
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$results" | tail -1 || true)
  e2e_pass=$(echo "$line" | awk '{print $1}'); e2e_fail=$(echo "$line" | awk '{print $3}')
  [ -n "$line" ] || { echo "end-to-end suite printed no summary"; status=1; }
fi
rm -f "$results"
echo "unit+reference: ${unit_pass:-0} passed, ${unit_fail:-0} failed; end-to-end: ${e2e_pass:-0} passed, ${e2e_fail:-0} failed"
echo "$(( ${unit_pass:-0} + ${e2e_pass:-0} )) passed, $(( ${unit_fail:-0} + ${e2e_fail:-0} )) failed"
exit $status
