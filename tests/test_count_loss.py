"""The fused NB/ZINB loss (analytic gradient, lgamma on non-zero counts only) against the
dense path: the likelihoods' ``log_prob`` with autograd, values and gradients to 1e-5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genevae.model import count_loss
from genevae.model.count_loss import count_reconstruction_loss
from genevae.model.likelihoods import NegativeBinomial, ZeroInflatedNegativeBinomial

N_CELLS, N_GENES = 12, 40


def _inputs(dtype: torch.dtype, zinb: bool, seed: int = 0):
    """Logits, library, log theta, zero-inflation logits and counts with every regime:
    zeros (most entries), small and large counts, theta from 1e-2 to 1e4, an empty cell."""
    generator = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(N_CELLS, N_GENES, generator=generator, dtype=dtype)
    log_theta = torch.linspace(-4.6, 9.2, N_GENES, dtype=dtype)  # theta 1e-2 .. 1e4
    library = torch.randint(5, 400, (N_CELLS,), generator=generator).to(dtype)
    mu = library.unsqueeze(-1) * torch.softmax(logits, dim=-1)
    x = torch.poisson(mu, generator=generator)
    x[1, :5] = torch.tensor([1e3, 1e4, 5.0, 31.0, 32.0], dtype=dtype)  # around the table's end
    x[3, :2] = torch.tensor([0.5, 2.5], dtype=dtype)  # non-integer counts
    x[2], library[2] = 0.0, 0.0  # an empty cell
    zi_logits = 3.0 * torch.randn(N_CELLS, N_GENES, generator=generator, dtype=dtype) if zinb else None
    return logits, library, log_theta, zi_logits, x


def _dense_nll(logits, library, log_theta, zi_logits, x):
    mu = library.unsqueeze(-1) * torch.softmax(logits, dim=-1)
    if zi_logits is None:
        p_x = NegativeBinomial(mu, log_theta.exp(), validate_args=False)
    else:
        p_x = ZeroInflatedNegativeBinomial(mu, log_theta.exp(), zi_logits, validate_args=False)
    return -p_x.log_prob(x).sum(dim=-1)


def _value_and_grads(loss_fn, logits, library, log_theta, zi_logits, x, weights):
    leaves = [t.clone().requires_grad_() for t in (logits, log_theta)]
    if zi_logits is not None:
        leaves.append(zi_logits.clone().requires_grad_())
    zi = leaves[2] if zi_logits is not None else None
    nll = loss_fn(leaves[0], library, leaves[1], zi, x)
    grads = torch.autograd.grad((nll * weights).sum(), leaves)
    return nll.detach(), grads


def _fused(logits, library, log_theta, zi_logits, x):
    return count_reconstruction_loss(logits, library, log_theta, x, zi_logits)


def _relative_errors(got, want) -> list[float]:
    """Largest error of the value and of each gradient, relative to the largest entry."""
    pairs = [(got[0], want[0]), *zip(got[1], want[1], strict=True)]
    return [((g.double() - w).abs().max() / w.abs().max()).item() for g, w in pairs]


@pytest.mark.parametrize("weighting", ["random", "batch mean"])
@pytest.mark.parametrize("likelihood", ["nb", "zinb"])
def test_fused_loss_matches_the_dense_path(likelihood: str, weighting: str) -> None:
    """Any weights of the cells, and equal ones (the training objective's batch mean,
    which the backward handles apart)."""
    inputs = _inputs(torch.float64, likelihood == "zinb")
    weights = (torch.rand(N_CELLS, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
               if weighting == "random" else torch.full((N_CELLS,), 1 / N_CELLS, dtype=torch.float64))
    got, got_grads = _value_and_grads(_fused, *inputs, weights)
    want, want_grads = _value_and_grads(_dense_nll, *inputs, weights)
    assert (inputs[-1] == 0).float().mean() > 0.3  # the sparse part is exercised
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5 * w.abs().max().item())


@pytest.mark.parametrize("likelihood", ["nb", "zinb"])
def test_fused_loss_in_float32_is_as_accurate_as_the_dense_path(likelihood: str) -> None:
    """Against the float64 values: within 1e-5 for theta of 0.05-50 (single-cell data);
    over theta 1e-2-1e4, where float32 lgamma differences cancel, no less accurate
    than the dense path in float32."""
    weights = torch.rand(N_CELLS, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    typical = list(_inputs(torch.float64, likelihood == "zinb"))
    typical[2] = torch.linspace(-3.0, 3.9, N_GENES, dtype=torch.float64)
    for inputs, tolerance in ((typical, 1e-5), (_inputs(torch.float64, likelihood == "zinb"), None)):
        reference = _value_and_grads(_dense_nll, *inputs, weights)
        single = [None if t is None else t.float() for t in inputs]
        fused = _relative_errors(_value_and_grads(_fused, *single, weights.float()), reference)
        if tolerance is not None:
            assert max(fused) < tolerance, fused
        else:
            dense = _relative_errors(_value_and_grads(_dense_nll, *single, weights.float()),
                                     reference)
            assert all(f <= max(2 * d, 1e-6) for f, d in zip(fused, dense, strict=True)), (
                fused, dense)


@pytest.mark.parametrize("likelihood", ["nb", "zinb"])
def test_fused_loss_without_gradients_gives_the_same_values(likelihood: str) -> None:
    logits, library, log_theta, zi_logits, x = _inputs(torch.float64, likelihood == "zinb")
    with torch.no_grad():
        fast = count_reconstruction_loss(logits, library, log_theta, x, zi_logits)
    torch.testing.assert_close(fast, _dense_nll(logits, library, log_theta, zi_logits, x),
                               rtol=1e-10, atol=1e-8)


def test_fused_loss_passes_gradcheck() -> None:
    logits, library, log_theta, zi_logits, x = _inputs(torch.float64, zinb=True)
    logits, log_theta, zi_logits = (t[:4, :8].contiguous().requires_grad_()
                                    if t.dim() == 2 else t[:8].clone().requires_grad_()
                                    for t in (logits, log_theta, zi_logits))
    assert torch.autograd.gradcheck(
        lambda a, b, c: count_reconstruction_loss(a, library[:4], b, x[:4, :8], c),
        (logits, log_theta, zi_logits),
    )


def test_the_c_kernel_is_built_and_used_for_cpu_float32() -> None:
    """``make test`` builds the kernel (setup.py); without it training falls back to torch."""
    assert count_loss.kernel_available()


def test_loading_the_c_kernel_keeps_subnormal_floats() -> None:
    """The kernel is compiled with -ffast-math; linked with it, it would flush subnormal
    floats to zero in the whole process (numpy's and torch's arithmetic included)."""
    assert count_loss.kernel_available()
    smallest = np.nextafter(np.float32(0), np.float32(1))
    assert smallest * np.float32(1.5) > 0
    assert (torch.tensor([1e-40]) * 1.5).item() > 0


@pytest.mark.parametrize("likelihood", ["nb", "zinb"])
def test_the_c_kernel_and_the_torch_path_agree(likelihood: str, monkeypatch) -> None:
    """Float32, 1,000 genes (past the vector loops' remainders), values and gradients."""
    generator = torch.Generator().manual_seed(2)
    n_cells, n_genes = 16, 1003
    logits = 2.0 * torch.randn(n_cells, n_genes, generator=generator)
    log_theta = torch.linspace(-3.0, 5.0, n_genes)
    library = torch.randint(100, 5000, (n_cells,), generator=generator).float()
    x = torch.poisson(library.unsqueeze(-1) * torch.softmax(logits, -1), generator=generator)
    x[0, :4] = torch.tensor([31.0, 32.0, 500.0, 2.5])  # the table's end, large, non-integer
    zi_logits = torch.randn(n_cells, n_genes, generator=generator) if likelihood == "zinb" else None
    weights = torch.rand(n_cells, generator=generator)
    inputs = (logits, library, log_theta, zi_logits, x)
    kernel = _value_and_grads(_fused, *inputs, weights)
    monkeypatch.setattr(count_loss, "_KERNEL", None)
    reference = _value_and_grads(_fused, *inputs, weights)
    assert max(_relative_errors(kernel, reference)) < 1e-5
    monkeypatch.undo()
    with torch.no_grad():  # the kernel's path without gradients
        values = _fused(*inputs)
    assert ((values - reference[0]).abs().max() / reference[0].abs().max()).item() < 1e-5


@pytest.mark.parametrize("likelihood", ["nb", "zinb"])
def test_the_kernel_on_torch_threads_gives_the_numbers_of_one_thread(likelihood: str) -> None:
    """The kernel shares torch's OpenMP threads, each taking a contiguous share of the
    cells (12 cells on 5 threads: shares of 2 and 3); every cell's value and gradient
    are bit for bit those of the serial call, with and without gradients."""
    assert count_loss._OPENMP is not None  # torch's OpenMP runtime was found
    logits, library, log_theta, zi_logits, x = _inputs(torch.float32, likelihood == "zinb")
    weights = torch.rand(N_CELLS, generator=torch.Generator().manual_seed(3))
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 5):
            torch.set_num_threads(n)
            value, grads = _value_and_grads(_fused, logits, library, log_theta, zi_logits, x,
                                            weights)
            with torch.no_grad():
                results.append((value, *grads, _fused(logits, library, log_theta, zi_logits, x)))
    finally:
        torch.set_num_threads(threads)
    for serial, parallel in zip(*results, strict=True):
        assert torch.equal(serial, parallel)


def test_the_kernel_takes_torchs_openmp_runtime_when_another_is_loaded() -> None:
    """scikit-learn brings its own libgomp; running the kernel on that runtime's threads
    (a second team beside torch's) made benchmark epochs 2.5x slower."""
    import ctypes

    import sklearn.neighbors  # noqa: F401  (loads scikit-learn's libgomp)

    with open("/proc/self/maps") as maps:
        runtimes = {Path(line.split()[-1]).resolve() for line in maps if "libgomp" in line}
    assert len(runtimes) >= 2  # torch's and scikit-learn's

    class DlInfo(ctypes.Structure):
        _fields_ = [("file", ctypes.c_char_p), ("base", ctypes.c_void_p),
                    ("symbol", ctypes.c_char_p), ("address", ctypes.c_void_p)]

    info = DlInfo()
    assert ctypes.CDLL(None).dladdr(ctypes.c_void_p(count_loss._torch_openmp().parallel),
                                    ctypes.byref(info))
    assert Path(info.file.decode()).resolve().parent == Path(torch.__file__).parent / "lib"
