"""Mini-batches from in-memory tensors, in a seeded order per epoch.

The order of an epoch depends only on ``(seed, epoch)``, so a run resumed at an
epoch boundary sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

__all__ = ["Batch", "BatchSource", "InMemoryBatches", "epoch_generator"]


@dataclass(frozen=True)
class Batch:
    """One mini-batch.

    Attributes
    ----------
    x
        (batch, n_genes) target values: raw counts (NB/ZINB) or standardised values (Gaussian).
    library
        (batch,) total counts per cell over the modelled genes.
    conditions
        (batch, n_condition_keys) int64 category codes.
    """

    x: torch.Tensor
    library: torch.Tensor
    conditions: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


class BatchSource(Protocol):
    """What the trainer needs of a batch source (in memory or streamed from disk)."""

    @property
    def n_cells(self) -> int: ...

    def __len__(self) -> int: ...

    def epoch(self, epoch: int) -> Iterator[Batch]: ...


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator that shuffles the cells of ``epoch`` (0-based) under ``seed``."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class InMemoryBatches:
    """Batches over a subset of rows of pre-built tensors.

    Parameters
    ----------
    x, library, conditions
        Tensors for all cells: (n_cells, n_genes), (n_cells,), (n_cells, n_keys).
    indices
        Rows this source serves (e.g. the training split).
    batch_size
        Cells per batch; the last batch may be smaller.
    shuffle, seed
        Shuffle the rows each epoch with a generator seeded by ``(seed, epoch)``.
    device
        Where the batches are: the served rows are moved there once, so batches
        are slices on the device (no host transfer per batch).
    """

    def __init__(
        self,
        x: torch.Tensor,
        library: torch.Tensor,
        conditions: torch.Tensor,
        indices: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        # The rows are gathered per batch, not copied here: the training, validation and
        # evaluation sources of a run share one matrix in memory (moved to ``device`` once;
        # ``.to`` is a no-op when it is already there).
        self.index = torch.as_tensor(indices, dtype=torch.long).to(device=device)  # (n,)
        self._tensors = tuple(t.to(device=device) for t in (x, library, conditions))
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed

    @property
    def x(self) -> torch.Tensor:
        """(n, n_genes) the rows this source serves (a copy)."""
        return self._tensors[0][self.index]

    @property
    def n_cells(self) -> int:
        return self.index.shape[0]

    def __len__(self) -> int:
        return -(-self.n_cells // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """Yield the batches of ``epoch`` (0-based)."""
        if self.shuffle:
            order = torch.randperm(self.n_cells, generator=epoch_generator(self.seed, epoch))
            order = order.to(self.index.device)
        for start in range(0, self.n_cells, self.batch_size):
            if self.shuffle:
                rows = self.index.index_select(0, order[start : start + self.batch_size])
            else:
                rows = self.index[start : start + self.batch_size]
            # index_select: ~7x faster than advanced indexing (x[rows]) for row gathers
            yield Batch(*(tensor.index_select(0, rows) for tensor in self._tensors))
