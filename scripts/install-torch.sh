#!/bin/sh
# Idempotent installer of the PyTorch reference toolchain (Debian packages only) used by
# python/spartan_torch (the PyTorch trainer and test oracle) and test/reference/bench_torch.py.
#   - Debian's system interpreter /usr/bin/python3 with python3-torch (1.13) and python3-numpy;
#   - libopenblas0-openmp: without it torch falls back to the reference BLAS (about 10x slower).
# Run as root (or via sudo) on a fresh Debian bookworm machine. Prints one line: torch version + BLAS config.
set -eu

PY=/usr/bin/python3
PKGS="python3-torch python3-numpy libopenblas0-openmp"

need_install=0
if ! "$PY" -c 'import torch, numpy' >/dev/null 2>&1; then need_install=1; fi
if ! dpkg-query -W -f='${Status}' libopenblas0-openmp 2>/dev/null | grep -q 'install ok installed'; then need_install=1; fi

if [ "$need_install" = 1 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 $PKGS
fi

"$PY" - <<'PYEOF'
import re, torch, numpy
torch.set_num_threads(1)
a = torch.randn(64, 64); (a @ a).sum().item()  # forces the BLAS library to be loaded
libs = set()
with open("/proc/self/maps") as f:
    for line in f:
        p = line.split()[-1]
        if re.search(r"(blas|lapack)", p): libs.add(p)
cfg = torch.__config__.show()
m = re.search(r"BLAS_INFO=([^,]*)", cfg)
print("torch %s numpy %s BLAS_INFO=%s loaded=%s" % (torch.__version__, numpy.__version__, m.group(1) if m else "?",
      ",".join(sorted(libs)) or "none"))
PYEOF
