"""Building blocks of the encoder and decoder: the hidden MLP and the condition features."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "MLP",
    "Dropout",
    "ConditionEncoder",
    "Linear",
    "CONDITION_ENCODINGS",
    "MAX_EMBEDDING_DIM",
    "MIN_LOW_PRECISION_WEIGHTS",
    "set_matmul_dtype",
]

CONDITION_ENCODINGS = ("onehot", "embedding")
#: Learned embeddings use min(MAX_EMBEDDING_DIM, n_categories) dimensions per key.
MAX_EMBEDDING_DIM = 8


class _Bfloat16Linear(torch.autograd.Function):
    """x W^T + b with the products in bfloat16 (accumulated in float32) and float32 in
    and out; the bias is added in float32, so only x W^T is rounded to bfloat16."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        x_low, weight_low = x.to(torch.bfloat16), weight.to(torch.bfloat16)
        out = torch.mm(x_low, weight_low.t()).float()
        if bias is not None:
            out += bias
        ctx.save_for_backward(x_low, weight_low)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x_low, weight_low = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad_low = grad_out.to(torch.bfloat16)
        grad_x = torch.mm(grad_low, weight_low).float() if needs[0] else None
        grad_weight = torch.mm(grad_low.t(), x_low).float() if needs[1] else None
        grad_bias = grad_out.sum(0) if ctx.has_bias and needs[2] else None
        return grad_x, grad_weight, grad_bias


class Linear(nn.Linear):
    """:class:`torch.nn.Linear` whose training-mode products can run in bfloat16.

    With ``matmul_dtype = torch.bfloat16`` (set by :func:`set_matmul_dtype`), a training
    step multiplies in bfloat16 with float32 accumulation: 3-4x faster on CPUs with
    AVX512-BF16 or AMX, and on GPUs. The weights, their gradients, the optimiser and
    everything in eval mode (validation, embeddings, reports) stay float32. Input
    (batch, in_features), 2-D.
    """

    matmul_dtype: torch.dtype = torch.float32

    def forward(self, x: Tensor) -> Tensor:
        if self.matmul_dtype == torch.bfloat16 and self.training and x.dim() == 2:
            return _Bfloat16Linear.apply(x, self.weight, self.bias)
        return super().forward(x)


#: Layers with fewer weights keep float32 products: casting costs more than it saves.
MIN_LOW_PRECISION_WEIGHTS = 2**14


def set_matmul_dtype(model: nn.Module, dtype: torch.dtype) -> None:
    """Run the training-mode products of every :class:`Linear` in ``model`` with at least
    :data:`MIN_LOW_PRECISION_WEIGHTS` weights in ``dtype`` (``torch.float32`` or
    ``torch.bfloat16``)."""
    for module in model.modules():
        if isinstance(module, Linear):
            large = module.weight.numel() >= MIN_LOW_PRECISION_WEIGHTS
            module.matmul_dtype = dtype if large else torch.float32


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` whose CPU training-mode mask comes from ``torch.rand_like``:
    the same distribution (a unit is kept with probability 1 - p, to 2**-24, and scaled
    by 1 / (1 - p)), drawn from the same global generator, in ~60% of the time of the
    native kernel's ``bernoulli_`` (forward and backward on a (128, 128) activation: 71
    against 112 µs). Elsewhere, or in eval mode, it is the native module."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and x.device.type == "cpu" and 0.0 < self.p < 1.0):
            return super().forward(x)
        mask = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        return x * mask


class MLP(nn.Sequential):
    """``n_layers`` hidden blocks of Linear -> [BatchNorm1d] -> ReLU -> Dropout.

    Parameters
    ----------
    n_input
        Input features.
    n_hidden
        Width of every hidden layer; the output has ``n_hidden`` features.
    n_layers
        Number of blocks (>= 1).
    dropout
        Dropout rate after each ReLU (active in training mode only).
    batch_norm
        Batch normalisation after each Linear.

    Input (batch, n_input) -> output (batch, n_hidden). The first layer is a
    :class:`Linear` (it holds the n_input x n_hidden product, the large one when the
    input is the genes).
    """

    def __init__(
        self, n_input: int, n_hidden: int, n_layers: int, dropout: float, batch_norm: bool
    ) -> None:
        layers: list[nn.Module] = []
        for i in range(n_layers):
            layers.append(Linear(n_input, n_hidden) if i == 0 else nn.Linear(n_hidden, n_hidden))
            if batch_norm:
                layers.append(nn.BatchNorm1d(n_hidden))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(Dropout(dropout))
        super().__init__(*layers)


class ConditionEncoder(nn.Module):
    """Turn integer condition codes into features concatenated to x and to z.

    Parameters
    ----------
    n_categories
        Number of categories of each condition key (tissue, batch, ...); may be empty,
        for an unconditional model.
    encoding
        ``"onehot"``: one indicator block per key, sum(n_categories) features.
        ``"embedding"``: a learned embedding of min(8, n_categories[k]) dimensions per
        key, concatenated.

    Input (batch, n_keys) int64 codes, code k in [0, n_categories[k]);
    output (batch, n_output) float.
    """

    def __init__(self, n_categories: Sequence[int], encoding: str = "onehot") -> None:
        super().__init__()
        if encoding not in CONDITION_ENCODINGS:
            raise ValueError(
                f"encoding={encoding!r}: choose one of {', '.join(CONDITION_ENCODINGS)}."
            )
        if any(n < 1 for n in n_categories):
            raise ValueError(
                f"n_categories={list(n_categories)}: every key needs at least 1 category."
            )
        self.encoding = encoding
        self.register_buffer(
            "n_categories", torch.tensor(list(n_categories), dtype=torch.long), persistent=False
        )
        # Column where each key's one-hot block starts: codes + offsets index one matrix.
        offsets = torch.tensor([0, *n_categories], dtype=torch.long).cumsum(0)[:-1]
        self.register_buffer("onehot_offsets", offsets, persistent=False)
        self.embeddings = nn.ModuleList(
            nn.Embedding(n, min(MAX_EMBEDDING_DIM, n))
            for n in (n_categories if encoding == "embedding" else ())
        )
        if encoding == "onehot":
            self.n_output = int(sum(n_categories))
        else:
            self.n_output = sum(e.embedding_dim for e in self.embeddings)

    def forward(self, conditions: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """Condition features.

        Parameters
        ----------
        conditions
            (batch, n_keys) int64 codes.
        dtype
            Float type of one-hot features (embeddings keep their weights' dtype).

        Returns
        -------
        Tensor
            (batch, n_output) features; (batch, 0) for an unconditional model.
        """
        n_keys = self.n_categories.shape[0]
        if conditions.dim() != 2 or conditions.shape[1] != n_keys:
            raise ValueError(
                f"conditions has shape {tuple(conditions.shape)}; expected (batch, {n_keys})."
            )
        if n_keys > 0 and ((conditions < 0) | (conditions >= self.n_categories)).any():
            raise ValueError(
                f"condition codes must lie in [0, n_categories) per key, "
                f"n_categories={self.n_categories.tolist()}."
            )
        if self.encoding == "embedding" and n_keys > 0:
            return torch.cat([e(conditions[:, k]) for k, e in enumerate(self.embeddings)], dim=1)
        features = torch.zeros(
            conditions.shape[0], self.n_output, dtype=dtype, device=conditions.device
        )
        return features.scatter_(
            1, conditions + self.onehot_offsets, 1.0
        )  # (batch, sum(n_categories))
