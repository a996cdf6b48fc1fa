"""Mini-batches streamed from disk chunk by chunk, shuffled within and across chunks.

The cells a source serves (its positions ``0 .. n_cells - 1``) are cut into blocks
of consecutive cells. In a shuffled epoch the blocks are visited in a random order;
each *load* reads :data:`BLOCKS_PER_CHUNK` of them (sorted, so the reads go forward
through the file), about ``chunk_size`` cells in all, shuffles those cells and cuts
them into batches. The cells a load leaves over (fewer than a batch) open the next
load's first batch, so every batch but the last is full. Memory is one load plus
one batch, whatever the number of cells.

The order depends only on ``(seed, epoch)``: the cells of a load are shuffled with
the generator :class:`~genevae.data.batches.InMemoryBatches` uses, so a load that
holds every cell gives exactly the in-memory batches. Without shuffling, loads are
consecutive cells and the batches those of the in-memory source.

A load stays as the reader keeps it (sparse rows for a backed file) and each batch is
made model-ready on its own, so an epoch never holds a dense copy of a whole load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from genevae.data.batches import Batch, epoch_generator

__all__ = ["BLOCKS_PER_CHUNK", "ChunkedBatches", "LoadedCells", "Reader", "block_order_seed"]

#: Blocks read per load: a load mixes this many random places of the file, so that
#: a file sorted by cell type still gives mixed batches (genevae choice; the
#: "block shuffling" of scDataset, Sarkar et al. 2025, with a fetch factor of 8).
BLOCKS_PER_CHUNK = 8

#: The cells of one load: ``cells(rows)`` gives model-ready ``x`` (len(rows), n_genes)
#: and ``library`` (len(rows),) of the load's cells ``rows`` (int64, any order).
LoadedCells = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

#: Reads the cells at sorted positions (one load) and returns its :data:`LoadedCells`.
Reader = Callable[[np.ndarray], LoadedCells]


def block_order_seed(seed: int, epoch: int) -> int:
    """Seed of the block order of ``epoch`` (distinct from the cells' shuffle)."""
    return (seed * 1_000_003 + epoch * 104_729 + 7) % (2**63)


class ChunkedBatches:
    """Batches over ``n_cells`` cells read ``chunk_size`` at a time by ``read``.

    Parameters
    ----------
    read
        ``read(positions)`` returns ``(x, library)`` for sorted positions, on the
        device the batches should be on.
    conditions
        (n_cells, n_keys) int64 codes of the source's cells, on that device.
    batch_size, shuffle, seed
        As in :class:`~genevae.data.batches.InMemoryBatches`.
    chunk_size
        Cells per load; sets the memory of an epoch.
    """

    def __init__(
        self,
        read: Reader,
        conditions: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        chunk_size: int = 10_000,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size={chunk_size}: must be at least 1 cell.")
        self.read = read
        self.conditions = conditions
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.chunk_size = chunk_size
        self.block_size = -(-chunk_size // BLOCKS_PER_CHUNK)

    @property
    def n_cells(self) -> int:
        return int(self.conditions.shape[0])

    def __len__(self) -> int:
        return -(-self.n_cells // self.batch_size)

    def loads(self, epoch: int) -> list[np.ndarray]:
        """The sorted positions read by each load of ``epoch``, in reading order."""
        if not self.shuffle:
            return [np.arange(start, min(start + self.chunk_size, self.n_cells))
                    for start in range(0, self.n_cells, self.chunk_size)]
        n_blocks = -(-self.n_cells // self.block_size)
        generator = torch.Generator().manual_seed(block_order_seed(self.seed, epoch))
        order = torch.randperm(n_blocks, generator=generator).numpy()
        loads = []
        for first in range(0, n_blocks, BLOCKS_PER_CHUNK):
            blocks = np.sort(order[first : first + BLOCKS_PER_CHUNK])
            loads.append(np.concatenate([
                np.arange(b * self.block_size, min((b + 1) * self.block_size, self.n_cells))
                for b in blocks
            ]))
        return loads

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """Yield the batches of ``epoch`` (0-based)."""
        generator = epoch_generator(self.seed, epoch) if self.shuffle else None
        left: Batch | None = None  # cells of the previous load not yet in a batch
        for positions in self.loads(epoch):
            cells = self.read(positions)
            conditions = self.conditions[torch.as_tensor(positions, device=self.conditions.device)]
            n_cells = len(positions)
            order = (torch.randperm(n_cells, generator=generator) if generator is not None
                     else torch.arange(n_cells))
            start = 0
            if left is not None:  # the previous load's rest opens this load's first batch
                start = min(self.batch_size - len(left), n_cells)
                head = _batch(cells, conditions, order[:start])
                left = Batch(torch.cat([left.x, head.x]), torch.cat([left.library, head.library]),
                             torch.cat([left.conditions, head.conditions]))
                if len(left) < self.batch_size:
                    continue
                yield left
                left = None
            n_full = start + (n_cells - start) // self.batch_size * self.batch_size
            for first in range(start, n_full, self.batch_size):
                yield _batch(cells, conditions, order[first : first + self.batch_size])
            if n_full < n_cells:
                left = _batch(cells, conditions, order[n_full:])
        if left is not None:
            yield left


def _batch(cells: LoadedCells, conditions: torch.Tensor, rows: torch.Tensor) -> Batch:
    """The batch of a load's cells ``rows``."""
    x, library = cells(rows)
    return Batch(x, library, conditions[rows.to(conditions.device)])
