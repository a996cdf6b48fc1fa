"""The NB and ZINB reconstruction loss from decoder logits, with an analytic gradient.

The same numbers as ``-NegativeBinomial(mu, theta).log_prob(x).sum(-1)`` (and its
ZINB form) with mu = library * softmax(logits), computed in one
:class:`torch.autograd.Function` instead of a graph of ~40 elementwise autograd
nodes. Used by :meth:`genevae.model.vae.VAE.loss` for training and evaluation;
the :mod:`~genevae.model.likelihoods` distributions remain the reference (their
tests run against ``scipy.stats``) and serve sampling, means and the IWAE bound.

Per cell b and gene g, with s = softmax(logits), r = mu / theta and q = log(1 + r),

    log NB(x; mu, theta) = x log s + x log library - x log theta - (x + theta) q
                           + [x > 0] (lgamma(x + theta) - lgamma(theta) - lgamma(x + 1)).

Summed over genes, every term but the last is a row dot product or a matrix-vector
product over the dense (batch, n_genes) matrices, with sum_g x log s = sum_g x logits
- x_sum logsumexp(logits); the only per-entry transcendental functions are the softmax's
exp and one log1p. Zero counts, 70-95% of the entries of single-cell data, need no
lgamma: those terms are computed on the non-zero entries only. The gradients (derived
by hand), with t = 1 / (1 + r) = theta / (theta + mu):

    b = (mu - x) t                                         (= -mu d log p / d mu)
    d(-log p) / d logits_g = b_g - s_g sum_k b_k
    d(-log p) / d log library = sum_g b_g
    d(-log p) / d log theta = theta q - b - theta D,   D = [x > 0] (digamma(x + theta) - digamma(theta)).

ZINB with zero-inflation logits l, v = l + theta q (so that log NB(0) = -theta q) and
z = [x = 0]: log p = log NB(x) - softplus(l) + z softplus(v), since for x = 0
-softplus(l) + logaddexp(l, -theta q) = -theta q - softplus(l) + softplus(v). Its
gradients with respect to mu and theta are the NB ones weighted by
omega = 1 - z sigmoid(v) (1 for x > 0, the posterior share of the NB zero for x = 0),
and d(-log p) / d l = sigmoid(l) - z sigmoid(v).

On the CPU, with float32 inputs, :class:`_CountLoss` runs the same formulas in the C
kernel ``_count_kernel.c`` (built by ``setup.py`` when a C compiler is there): three
passes over each cell's genes instead of ~25 torch operations over the batch, the
cells shared out over torch's own OpenMP threads (a 128 x 715 ZINB batch: 0.64 -> 0.41 ms
on 2 threads; a second team of threads would fight torch's spinning ones). Without
it (no compiler, another device or dtype, or ``GENEVAE_COUNT_KERNEL=torch`` in the
environment) the torch path below runs; the two agree to float32 rounding (tests).
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import logging
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["count_reconstruction_loss", "SMALL_COUNT_TABLE", "kernel_available"]

log = logging.getLogger(__name__)

#: Integer counts below this take their lgamma and digamma differences from per-gene
#: tables built from theta at each call (cumulative sums of log((theta + j) / (j + 1))
#: and 1 / (theta + j)); larger or non-integer counts call lgamma and digamma.
#: genevae choice: covers almost every non-zero UMI count for 128 cumulative terms per gene.
SMALL_COUNT_TABLE = 32


def _load_kernel() -> ctypes.CDLL | None:
    """The C kernel next to this module, or None: not built, not loadable (a glibc
    older than 2.35 lacks the vector log1pf) or ``GENEVAE_COUNT_KERNEL=torch``."""
    if os.environ.get("GENEVAE_COUNT_KERNEL", "").lower() == "torch":
        return None
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = Path(__file__).with_name("_count_kernel" + suffix)
        if not path.exists():
            continue
        try:
            kernel = ctypes.CDLL(str(path))
        except OSError as error:
            log.warning("the count loss's C kernel %s does not load (%s); using torch", path, error)
            return None
        pointer, size = ctypes.c_void_p, ctypes.c_int64
        kernel.gv_gamma_tables.argtypes = [size, size, pointer, pointer, pointer]
        kernel.gv_gamma_tables.restype = None
        kernel.gv_count_loss.argtypes = ([size] * 4 + [pointer] * 9 + [ctypes.c_int]
                                         + [pointer] * 8)
        kernel.gv_count_loss.restype = None
        kernel.gv_count_loss_parallel.argtypes = ([pointer] * 3 + [size] * 5 + [pointer] * 9
                                                  + [ctypes.c_int] + [pointer] * 8)
        kernel.gv_count_loss_parallel.restype = None
        return kernel
    return None


class _OpenMP(NamedTuple):
    """Addresses of torch's OpenMP runtime's entry points, for the kernel's threads."""

    parallel: int  # GOMP_parallel(fn, data, n_threads, flags)
    thread_num: int  # omp_get_thread_num()
    num_threads: int  # omp_get_num_threads()


def _torch_openmp() -> _OpenMP | None:
    """The OpenMP runtime torch runs its threads on, or None (torch without an OpenMP
    backend, or no ``/proc/self/maps`` to find torch's library in, as on macOS): the
    kernel then runs on the calling thread. The entry points are looked up through
    torch's own ``libtorch_cpu`` (``dlsym`` on its handle searches its dependencies in
    the order torch binds them), not by name: other packages bring their own runtimes
    (scikit-learn's ``libgomp-*.so``), and a second team of threads would fight torch's
    spinning ones for the cores (a benchmark epoch ran at 40% of its speed)."""
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({path for path in (line.split()[-1] for line in maps)
                            if Path(path).name.startswith("libtorch_cpu.")})
        torch_cpu = ctypes.CDLL(paths[0], mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        return _OpenMP(*(ctypes.cast(getattr(torch_cpu, symbol), ctypes.c_void_p).value
                         for symbol in ("GOMP_parallel", "omp_get_thread_num",
                                        "omp_get_num_threads")))
    except (OSError, IndexError, AttributeError):
        return None


_KERNEL = _load_kernel()
_OPENMP = _torch_openmp() if _KERNEL is not None else None


def kernel_available() -> bool:
    """Whether :func:`count_reconstruction_loss` runs the C kernel for CPU float32 input."""
    return _KERNEL is not None


class _NonZero(NamedTuple):
    """The non-zero entries of a (batch, n_genes) count matrix, in row-major order."""

    rows: Tensor  # (n_nonzero,) int64 cell
    cols: Tensor  # (n_nonzero,) int64 gene
    counts: Tensor  # (n_nonzero,) value
    per_row: Tensor  # (batch,) int64 number of non-zero entries of each cell


def _nonzero(x: Tensor) -> _NonZero:
    """The entries > 0 of the (batch, n_genes) counts ``x``, on its device.

    (Taking them from CSR rows of the data instead was no faster inside the training
    loop: ~0.5 ms a 2,000-gene batch either way, though 4x faster in isolation.)"""
    batch, n_genes = x.shape
    if x.device.type == "cpu":  # numpy's flatnonzero is ~10x faster than torch.nonzero here
        flat_np = np.flatnonzero(x.numpy() > 0)
        per_row_np = np.diff(np.searchsorted(flat_np, np.arange(batch + 1) * n_genes))
        flat, per_row = torch.from_numpy(flat_np), torch.from_numpy(per_row_np)
        rows = torch.from_numpy(np.repeat(np.arange(batch, dtype=np.int64), per_row_np))
    else:
        flat = x.reshape(-1).nonzero().squeeze(-1)
        rows = torch.div(flat, n_genes, rounding_mode="floor")
        per_row = torch.bincount(rows, minlength=batch)
    return _NonZero(rows, flat - rows * n_genes, x.reshape(-1).index_select(0, flat), per_row)


def _gamma_tables(theta: Tensor, need_digamma: bool) -> tuple[Tensor, Tensor | None]:
    """Per-gene tables, flat (:data:`SMALL_COUNT_TABLE` * n_genes,), entry k * n_genes + g:
    sum_{j<k} log((theta_g + j) / (j + 1)) = lgamma(k + theta) - lgamma(theta) - lgamma(k + 1)
    and, when asked, sum_{j<k} 1 / (theta_g + j) = digamma(k + theta) - digamma(theta).

    In theta's dtype: in float32 a table entry is within 1e-5 of the float64 value up to
    theta = 1e5 (relative error ~5e-8), far closer than float32 lgamma differences."""
    n_genes, n_tables = theta.shape[0], 2 if need_digamma else 1
    steps = torch.arange(SMALL_COUNT_TABLE - 1, dtype=theta.dtype, device=theta.device)
    theta_j = steps.unsqueeze(-1) + theta.detach()  # (table - 1, n_genes): theta + j
    tables = theta_j.new_empty(n_tables, SMALL_COUNT_TABLE, n_genes)
    tables[:, 0] = 0.0
    torch.log(theta_j, out=tables[0, 1:]).sub_(steps.log1p().unsqueeze(-1))
    if need_digamma:
        torch.reciprocal(theta_j, out=tables[1, 1:])
    tables.cumsum_(1)  # one pass over the (table, n_genes) layout: contiguous rows
    return tables[0].view(-1), tables[1].view(-1) if need_digamma else None


def _log_gamma_terms(
    nonzero: _NonZero, theta: Tensor, need_digamma: bool
) -> tuple[Tensor, Tensor | None]:
    """Per non-zero entry: lgamma(x + theta) - lgamma(theta) - lgamma(x + 1) and, when
    asked, digamma(x + theta) - digamma(theta); each (n_nonzero,).

    An integer x < :data:`SMALL_COUNT_TABLE` reads them from :func:`_gamma_tables`; other
    counts (large or non-integer: few) call lgamma and digamma directly.
    """
    counts, cols = nonzero.counts, nonzero.cols
    log_table, digamma_table = _gamma_tables(theta, need_digamma)
    # index k * n_genes + g with k = min(x, table - 1), truncated (exact for integers)
    index = counts.clamp(max=SMALL_COUNT_TABLE - 1).long().mul_(theta.shape[0]).add_(cols)
    log_terms = log_table.index_select(0, index)
    digamma_diff = digamma_table.index_select(0, index) if digamma_table is not None else None
    other = _large_or_fractional(counts)
    if other.numel():
        x_other = counts.index_select(0, other)
        theta_other = theta.index_select(0, cols.index_select(0, other))
        shifted = x_other + theta_other
        log_terms.index_copy_(0, other, torch.lgamma(shifted).sub_(torch.lgamma(theta_other))
                              .sub_(torch.lgamma(x_other + 1.0)))
        if digamma_diff is not None:
            digamma_diff.index_copy_(0, other, torch.digamma(shifted)
                                     .sub_(torch.digamma(theta_other)))
    return log_terms, digamma_diff


def _large_or_fractional(counts: Tensor) -> Tensor:
    """Positions (int64) of the counts >= :data:`SMALL_COUNT_TABLE` or not integers."""
    if counts.device.type == "cpu":  # numpy: ~3x faster than torch's compare and nonzero
        values = counts.numpy()
        found = np.flatnonzero((values >= SMALL_COUNT_TABLE) | (values != np.floor(values)))
        return torch.from_numpy(found)
    small = counts.clamp(max=SMALL_COUNT_TABLE - 1).floor()
    return (small != counts).nonzero().squeeze(-1)


def _row_sums(values: Tensor, nonzero: _NonZero) -> Tensor:
    """(batch,) sums of per-non-zero-entry ``values`` over each cell's entries."""
    return torch.segment_reduce(values, "sum", lengths=nonzero.per_row, unsafe=True)


def _kernel_applies(*tensors: Tensor | None) -> bool:
    """Whether the C kernel takes these inputs: loaded, all on the CPU, all float32."""
    return _KERNEL is not None and all(
        t is None or (t.device.type == "cpu" and t.dtype == torch.float32) for t in tensors)


def _address(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _kernel_forward(
    px_logits: Tensor, log_library: Tensor, px_log_theta: Tensor, zi_logits: Tensor | None,
    x: Tensor, need_grad: bool,
) -> tuple[Tensor, tuple[Tensor | None, ...]]:
    """-log p (batch,) from the C kernel and, with ``need_grad``, what the backward needs:
    d(-log p)/d logits, q omega - D and b (batch, n_genes), the b row sums (batch,), the
    ZINB d(-log p)/d l or None, and theta (n_genes,)."""
    px_logits, x = px_logits.contiguous(), x.contiguous()
    log_library, px_log_theta = log_library.contiguous(), px_log_theta.detach().contiguous()
    zi_logits = None if zi_logits is None else zi_logits.contiguous()
    batch, n_genes = px_logits.shape
    theta = px_log_theta.exp()
    inv_theta = theta.reciprocal()
    tables = theta.new_empty(2 if need_grad else 1, SMALL_COUNT_TABLE, n_genes)
    log_table, digamma_table = tables[0], tables[1] if need_grad else None
    _KERNEL.gv_gamma_tables(n_genes, SMALL_COUNT_TABLE, theta.data_ptr(), log_table.data_ptr(),
                            _address(digamma_table))
    neg_log_p = px_logits.new_empty(batch)
    if need_grad:
        grad_logits, q_minus_d, b = (torch.empty_like(px_logits) for _ in range(3))
        b_sum = px_logits.new_empty(batch)
        grad_zi = None if zi_logits is None else torch.empty_like(zi_logits)
    else:  # the kernel writes them into scratch rows (see _count_kernel.c)
        grad_logits = q_minus_d = b = b_sum = grad_zi = None
    # torch's threads take contiguous shares of the cells; each cell's numbers are those
    # of one thread (tests)
    n_threads = max(1, min(torch.get_num_threads(), batch)) if _OPENMP is not None else 1
    work = None if need_grad else px_logits.new_empty(n_threads * 4, n_genes)
    nonzero = torch.empty(n_threads, n_genes + 16, dtype=torch.int32)  # 16-lane stores
    arguments = (
        0, batch, n_genes, SMALL_COUNT_TABLE, px_logits.data_ptr(), log_library.data_ptr(),
        px_log_theta.data_ptr(), theta.data_ptr(), inv_theta.data_ptr(), x.data_ptr(),
        _address(zi_logits), log_table.data_ptr(), _address(digamma_table), int(need_grad),
        neg_log_p.data_ptr(), _address(grad_logits), _address(b), _address(q_minus_d),
        _address(b_sum), _address(grad_zi), _address(work), nonzero.data_ptr())
    if n_threads > 1:
        _KERNEL.gv_count_loss_parallel(*_OPENMP, n_threads, *arguments)
    else:
        _KERNEL.gv_count_loss(*arguments)
    return neg_log_p, (grad_logits, q_minus_d, b, b_sum, grad_zi, theta)


class _CountLoss(torch.autograd.Function):
    """-log p(x) summed over genes, (batch,) nats per cell; see the module docstring."""

    @staticmethod
    def forward(
        ctx,
        px_logits: Tensor,  # (batch, n_genes)
        log_library: Tensor,  # (batch,)
        px_log_theta: Tensor,  # (n_genes,)
        zi_logits: Tensor | None,  # (batch, n_genes) or None for NB
        x: Tensor,  # (batch, n_genes) counts
    ) -> Tensor:
        # Each (batch, n_genes) operation is a pass over memory and a thread barrier:
        # they are few, and in place where a buffer is not needed again.
        need_grad = any(ctx.needs_input_grad[:4])
        ctx.is_zinb = zi_logits is not None
        ctx.kernel = _kernel_applies(px_logits, log_library, px_log_theta, zi_logits, x)
        if ctx.kernel:
            neg_log_p, saved = _kernel_forward(px_logits, log_library, px_log_theta, zi_logits,
                                               x, need_grad)
            if need_grad:
                ctx.save_for_backward(*saved)
            return neg_log_p
        nonzero = _nonzero(x)
        theta = px_log_theta.exp()  # (n_genes,)
        library = log_library.exp()  # (batch,)
        scale = F.softmax(px_logits, dim=-1)  # s
        # logsumexp(logits) = max logits - log max s (the softmax keeps the argmax)
        log_sum_exp = px_logits.amax(-1) - scale.amax(-1).log()
        mu = scale * library.unsqueeze(-1)
        ratio = mu * theta.reciprocal()  # r = mu / theta
        q = torch.log1p(ratio)
        x_sum = x.sum(-1)
        log_p = (torch.linalg.vecdot(x, px_logits) - torch.linalg.vecdot(x, q)
                 + x_sum * (log_library - log_sum_exp) - x @ px_log_theta - q @ theta)
        log_terms, digamma_diff = _log_gamma_terms(nonzero, theta, need_grad)
        log_p += _row_sums(log_terms, nonzero)
        if zi_logits is not None:
            is_zero = torch.sign(x).neg_().add_(1.0)  # z = [x = 0] for counts >= 0
            v = torch.addcmul(zi_logits, q, theta)  # l + theta q
            log_p += torch.linalg.vecdot(is_zero, F.softplus(v)) - F.softplus(zi_logits).sum(-1)
        if not need_grad:
            return -log_p
        t = ratio.add_(1.0).reciprocal_()  # 1 / (1 + r)
        b = mu.sub_(x).mul_(t)  # (mu - x) t
        grad_zi = None
        if zi_logits is not None:
            zero_share = v.sigmoid_().mul_(is_zero)  # z sigmoid(v) = 1 - omega
            grad_zi = torch.sigmoid(zi_logits).sub_(zero_share)
            b.addcmul_(b, zero_share, value=-1.0)  # b omega
            q.addcmul_(q, zero_share, value=-1.0)  # q omega
        b_sum = b.sum(-1)  # (batch,)
        grad_logits = torch.addcmul(b, scale, b_sum.unsqueeze(-1), value=-1.0)
        # d(-log p) / d log theta = theta q - b - theta D: q and b for the backward,
        # and D per non-zero entry.
        ctx.save_for_backward(grad_logits, q, b, grad_zi, b_sum, theta, digamma_diff,
                              nonzero.rows, nonzero.cols)
        return -log_p

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        needs = ctx.needs_input_grad
        w = grad_out.unsqueeze(-1)  # (batch, 1)
        if ctx.kernel:  # q_minus_d = q omega - D on every entry
            grad_logits, q_minus_d, b, b_sum, grad_zi, theta = ctx.saved_tensors
            g_theta = ((grad_out @ q_minus_d).mul_(theta).sub_(grad_out @ b) if needs[2]
                       else None)
        else:
            grad_logits, q, b, grad_zi, b_sum, theta, digamma_diff, rows, cols = ctx.saved_tensors
            g_theta = (_theta_gradient(grad_out, q, b, theta, digamma_diff, rows, cols)
                       if needs[2] else None)
        g_logits = grad_logits * w if needs[0] else None
        g_library = b_sum * grad_out if needs[1] else None
        g_zi = grad_zi * w if ctx.is_zinb and needs[3] else None
        return g_logits, g_library, g_theta, g_zi, None


def _theta_gradient(grad_out: Tensor, q: Tensor, b: Tensor, theta: Tensor, digamma_diff: Tensor,
                    rows: Tensor, cols: Tensor) -> Tensor:
    """(n_genes,) d/d log theta of sum_b w_b (-log p_b) on the torch path:
    theta (w q) - w b - theta sum_b w_b D_b, D over the non-zero entries."""
    sparse = torch.zeros_like(theta)
    if grad_out.numel() and bool((grad_out == grad_out[0]).all()):
        # a batch mean: every cell weighs the same, so weigh the gene sums once
        sparse.index_add_(0, cols, digamma_diff).mul_(grad_out[0])
    else:
        sparse.index_add_(0, cols, grad_out.index_select(0, rows).mul_(digamma_diff))
    return (grad_out @ q).sub_(sparse).mul_(theta).sub_(grad_out @ b)


def count_reconstruction_loss(
    px_logits: Tensor,
    library: Tensor,
    px_log_theta: Tensor,
    x: Tensor,
    zi_logits: Tensor | None = None,
) -> Tensor:
    """-log NB(x; mu, theta) (or ZINB) summed over genes: (batch,) nats per cell.

    Parameters
    ----------
    px_logits
        (batch, n_genes) decoder logits; mu = library * softmax(px_logits).
    library
        (batch,) total counts per cell; 0 is floored at the smallest normal float, as
        :class:`~genevae.model.likelihoods.NegativeBinomial` floors mu.
    px_log_theta
        (n_genes,) log inverse dispersion.
    x
        (batch, n_genes) counts, >= 0 (no gradient).
    zi_logits
        (batch, n_genes) zero-inflation logits for ZINB; None for NB.

    Returns
    -------
    Tensor
        (batch,) the exact negative log-likelihood, lgamma(x + 1) included, equal to
        the :mod:`~genevae.model.likelihoods` value; differentiable in the logits,
        the library, log theta and the zero-inflation logits.
    """
    log_library = torch.log(library.clamp_min(torch.finfo(library.dtype).tiny))
    return _CountLoss.apply(px_logits, log_library, px_log_theta, zi_logits, x.detach())
