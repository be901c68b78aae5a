"""The process group: started by any `env://` launcher (torchrun, srun, mpirun, Ray Train's TorchTrainer, a
Kubernetes PyTorchJob, or by hand) through MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE (and LOCAL_RANK for the
device). Without WORLD_SIZE > 1 it is a single process and nothing is initialised. gloo on CPU, NCCL on CUDA."""
import datetime
import os
import socket

import torch
import torch.distributed as tdist

from .errors import SpartanError


class Group:
    def __init__(self, device="cpu", backend=None, timeout_minutes=30):
        # A group someone else started (Ray Train's TorchTrainer initialises it before calling the loop) is used
        # as it is; otherwise the env:// variables say whether there is one to join.
        self.owned = not (tdist.is_available() and tdist.is_initialized())
        if self.owned:
            self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
            self.rank = int(os.environ.get("RANK", "0"))
        else:
            self.world_size, self.rank = tdist.get_world_size(), tdist.get_rank()
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.active = self.world_size > 1
        if device == "cuda":
            if not torch.cuda.is_available():
                raise SpartanError("--device cuda: PyTorch sees no CUDA device here")
            torch.cuda.set_device(self.local_rank)
            self.device = torch.device("cuda", self.local_rank)
        elif device == "cpu":
            self.device = torch.device("cpu")
        else:
            raise SpartanError("--device must be cpu or cuda, got %r" % device)
        self.backend = (backend or ("nccl" if device == "cuda" else "gloo")) if self.active else None
        if not self.owned:
            self.backend = tdist.get_backend()
        elif self.active:
            missing = [k for k in ("MASTER_ADDR", "MASTER_PORT", "RANK") if k not in os.environ]
            if missing:
                raise SpartanError("WORLD_SIZE is %d but %s not set: start the ranks with torchrun, srun, or the "
                                   "env:// variables" % (self.world_size, ", ".join(missing)))
            tdist.init_process_group(self.backend, init_method="env://", world_size=self.world_size, rank=self.rank,
                                     timeout=datetime.timedelta(minutes=timeout_minutes))

    @property
    def is_main(self):
        return self.rank == 0

    def all_reduce_sum(self, tensor):
        """Sums `tensor` over the ranks, in place (a no-op on one process)."""
        if self.active:
            tdist.all_reduce(tensor, op=tdist.ReduceOp.SUM)
        return tensor

    def broadcast(self, obj):
        """Rank 0's `obj` on every rank (any picklable value)."""
        if not self.active:
            return obj
        box = [obj]
        tdist.broadcast_object_list(box, src=0, device=self.device if self.backend == "nccl" else None)
        return box[0]

    def hosts(self):
        """The host names of all ranks, each once, in rank order."""
        me = socket.gethostname()
        if not self.active:
            return [me]
        names = [None] * self.world_size
        tdist.all_gather_object(names, me)
        return list(dict.fromkeys(names))

    def close(self):
        if self.owned and self.active and tdist.is_initialized():
            tdist.destroy_process_group()
