"""Several processes, one model: ``torch.distributed`` data parallelism (DDP).

``torchrun --nproc_per_node=N -m genevae train ...`` starts N processes and sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`launch` reads them and joins the process group (gloo on CPU, NCCL on CUDA).
Without them there is one process and every method here is the identity.

What each rank does:

- it trains on its own shard of the training cells (:meth:`Distributed.shard`), a
  contiguous, equal share, so every rank takes the same number of steps;
  ``--batch-size`` is the global batch, split evenly over the ranks;
- DDP averages the gradients in ``backward`` (the model's ``forward`` returns the
  loss), so the weights stay identical on every rank;
- each step the ranks agree whether to stop (a signal, or a non-finite loss on any
  rank) so that no rank waits forever in an all-reduce another rank skipped;
- evaluation sums (reconstruction, KL, posterior moments, cells) and the training
  running averages are all-reduced, so every rank logs the global averages;
- only rank 0 prints and writes (the caller passes it the run folder and the echo).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist

from genevae.errors import GenevaeError

__all__ = ["Distributed", "SINGLE_PROCESS", "launch", "resolve_device", "RANK_SEED_STRIDE"]

log = logging.getLogger(__name__)

#: Offset between the per-epoch seeds of consecutive ranks, so that their dropout
#: and sampling noise differ (a prime far from any epoch count).
RANK_SEED_STRIDE = 1_000_000_007


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The torch device for ``--device`` (``auto``: CUDA, else MPS, else CPU).

    On CUDA each process of a node takes the GPU of its local rank.
    """
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise GenevaeError("--device cuda: no CUDA GPU is visible to torch; use --device cpu "
                               "or auto, or install a CUDA build of torch.")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "mps" and not torch.backends.mps.is_available():
        raise GenevaeError("--device mps: the Apple MPS backend is not available here; use "
                           "--device cpu or auto.")
    return torch.device(name)


@dataclass(frozen=True)
class Distributed:
    """This process's place in the group, and the collective operations training needs."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints and writes."""
        return self.rank == 0

    # -- data ----------------------------------------------------------------------
    def shard(self, indices: np.ndarray, equal: bool) -> np.ndarray:
        """This rank's contiguous share of ``indices``.

        ``equal`` (training): ``len(indices) // world_size`` each, the remainder
        left out, so that every rank takes the same number of steps. Otherwise
        (evaluation) the shares differ by at most one cell and cover every cell.
        """
        if not self.enabled:
            return indices
        if equal:
            n = len(indices) // self.world_size
            return indices[self.rank * n : (self.rank + 1) * n]
        return np.array_split(indices, self.world_size)[self.rank]

    def local_batch_size(self, batch_size: int) -> int:
        """Cells per step on this rank for the global ``batch_size``."""
        if batch_size % self.world_size:
            raise GenevaeError(
                f"--batch-size {batch_size} is the global batch and must split evenly over the "
                f"{self.world_size} processes; use a multiple of {self.world_size}, e.g. "
                f"{batch_size - batch_size % self.world_size or self.world_size}."
            )
        return batch_size // self.world_size

    def seed(self, seed: int) -> int:
        """This rank's version of a per-epoch seed (rank 0 keeps it)."""
        return (seed + self.rank * RANK_SEED_STRIDE) % (2**63)

    # -- model ---------------------------------------------------------------------
    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the training step calls: DDP around ``model`` when distributed."""
        if not self.enabled:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def accumulator(self, n: int) -> torch.Tensor:
        """(n,) zeros on the device for sums over a pass (float64; MPS has only float32)."""
        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        return torch.zeros(n, dtype=dtype, device=self.device)

    # -- collectives ---------------------------------------------------------------
    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the ranks (returned on the device they came from)."""
        if not self.enabled:
            return values
        home = values.device
        reduced = values.to(self.device, copy=True)
        dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
        return reduced.to(home)

    def any(self, flag: object) -> bool:
        """Whether ``flag`` is true on some rank."""
        if not self.enabled:
            return bool(flag)
        return bool(self.all_reduce_sum(torch.tensor([float(bool(flag))])).item() > 0)

    def halt(self, stop_received: object, objective: torch.Tensor) -> str | None:
        """``"interrupted"``, ``"diverged"`` or None: the same answer on every rank."""
        if not self.enabled:
            if stop_received:
                return "interrupted"
            return None if torch.isfinite(objective) else "diverged"
        flags = torch.stack([
            torch.tensor(float(bool(stop_received)), device=objective.device),
            (~torch.isfinite(objective.detach())).float(),
        ])
        stop, diverged = self.all_reduce_sum(flags).tolist()
        if stop:
            return "interrupted"
        return "diverged" if diverged else None

    def mean(self, value: torch.Tensor) -> float:
        """The mean over ranks of a scalar tensor (each rank's batch has the same size)."""
        if not self.enabled:
            return value.item()
        return self.all_reduce_sum(value.detach().reshape(1).double()).item() / self.world_size

    def average(self, running: dict[str, float], n_cells: int) -> dict[str, float]:
        """Cell-weighted average over ranks of per-rank averages over ``n_cells`` cells."""
        if not self.enabled or not running:
            return running
        names = sorted(running)
        packed = torch.tensor([running[k] * n_cells for k in names] + [n_cells], dtype=torch.float64)
        *totals, n_total = self.all_reduce_sum(packed).tolist()
        return {k: total / n_total for k, total in zip(names, totals, strict=True)}

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


SINGLE_PROCESS = Distributed()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


@contextmanager
def launch(device_name: str = "auto") -> Iterator[Distributed]:
    """Join the process group torchrun describes (if any) for the duration of a run."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    device = resolve_device(device_name, local_rank)
    if world_size <= 1:
        yield Distributed(device=device)
        return
    if device.type == "mps":
        raise GenevaeError("several processes on MPS: torch.distributed has no MPS backend; use "
                           "--device cpu with torchrun, or one process on MPS.")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    already = dist.is_initialized()
    if not already:
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    if rank == 0:
        log.info("distributed: %d processes, backend %s, device %s", world_size, backend, device.type)
    else:  # only rank 0 reports progress; the others still show warnings and errors
        logging.getLogger("genevae").setLevel(logging.WARNING)
    try:
        yield Distributed(rank=rank, world_size=world_size, local_rank=local_rank, device=device)
    finally:
        if not already:
            dist.destroy_process_group()
