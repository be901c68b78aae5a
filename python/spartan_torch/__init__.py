"""Spartan's PyTorch trainer: the same memories as `spartan train`, data parallel over any env:// launcher
(torchrun, srun, mpirun, Ray Train, Kubernetes), and the engine's float64 test oracle.

  PYTHONPATH=python python3 -m spartan_torch train --help
  PYTHONPATH=python python3 -m spartan_torch eval --help
"""
__version__ = "0.1.0"

# The reference API, for test/reference/bench_torch.py and check_reference.py (`import spartan_torch as st`).
from .model import *  # noqa: E402,F401,F403
from .safetensors import read_safetensors, write_safetensors  # noqa: E402,F401
