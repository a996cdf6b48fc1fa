"""The training-speed machinery keeps the numbers: one flat parameter for AdamW and the
clipping, bfloat16 products in training mode only, glibc's memory thresholds, and the
default train-evaluation subsample."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config

from genevae.config import MAX_EVAL_TRAIN_CELLS, build_config
from genevae.data.simulate import simulate_sc
from genevae.model.networks import MIN_LOW_PRECISION_WEIGHTS, Linear, set_matmul_dtype
from genevae.services.fitting import fit
from genevae.train.flat import FlatParameters
from genevae.train.memory import keep_freed_memory
from genevae.train.precision import cpu_has_native_bfloat16, resolve_precision


def _net(seed: int = 0) -> torch.nn.Module:
    # No bias before the batch norm: its gradient is zero in exact arithmetic (the norm
    # removes the mean), so it is rounding noise, which Adam scales up to steps of ~lr.
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5, bias=False), torch.nn.BatchNorm1d(5),
                               torch.nn.ReLU(), torch.nn.Linear(5, 3))


def _train(net, params, steps: int, flat: FlatParameters | None = None, optimizer=None,
           clip: float | None = None):
    optimizer = optimizer or torch.optim.AdamW(params, lr=1e-2, weight_decay=1e-2, fused=True)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 6, generator=generator)
        if flat is None:
            optimizer.zero_grad(set_to_none=True)
        else:
            flat.zero_grad()
        net(x).pow(2).sum().backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
    return optimizer


@pytest.mark.parametrize("clip", [None, 0.5])
def test_flat_parameters_train_like_separate_tensors(clip: float | None) -> None:
    """The same update to the last bit or two: AdamW's vectorised kernel over one long
    tensor may round differently from its scalar path over short ones, and the one
    norm of the flat gradient is summed in another order. (Over many steps Adam
    amplifies such differences where a gradient is ~0, so compare a few steps.)"""
    separate, flat_net = _net(), _net()
    flat = FlatParameters(flat_net)
    _train(separate, list(separate.parameters()), 3, clip=clip)
    _train(flat_net, [flat.parameter], 3, flat, clip=clip)
    for a, b in zip(separate.state_dict().values(), flat_net.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_flat_optimizer_state_is_per_tensor_and_resumes_exactly() -> None:
    reference = _net()
    ref_optimizer = _train(reference, list(reference.parameters()), 3)
    flat_net = _net()
    flat = FlatParameters(flat_net)
    flat_optimizer = _train(flat_net, [flat.parameter], 3, flat)
    state = flat.optimizer_state(flat_optimizer)
    want = ref_optimizer.state_dict()  # the layout of an optimiser over the tensors
    assert state["param_groups"] == want["param_groups"]
    assert state["state"].keys() == want["state"].keys()
    for i, entry in want["state"].items():
        assert state["state"][i].keys() == entry.keys()
        for key, value in entry.items():
            torch.testing.assert_close(state["state"][i][key], value, rtol=1e-5, atol=1e-7)
    # resuming from the per-tensor state continues the flat run bit for bit
    resumed = _net()
    resumed.load_state_dict(flat_net.state_dict())
    resumed_flat = FlatParameters(resumed)
    optimizer = torch.optim.AdamW([resumed_flat.parameter], lr=1e-2, weight_decay=1e-2,
                                  fused=True)
    resumed_flat.load_optimizer_state(optimizer, state)
    _train(resumed, [resumed_flat.parameter], 2, resumed_flat, optimizer)
    _train(flat_net, [flat.parameter], 2, flat, flat_optimizer)
    for a, b in zip(flat_net.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_flat_optimizer_state_of_another_model_is_refused() -> None:
    flat = FlatParameters(_net())
    optimizer = torch.optim.AdamW([flat.parameter])
    other = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
    with pytest.raises(ValueError, match="2 parameter tensors; this model has 5"):
        flat.load_optimizer_state(optimizer, other.state_dict())


def test_precision_resolution(tmp_path) -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_has_native_bfloat16() else "fp32")
    assert resolve_precision("auto", torch.device("mps")) == "fp32"
    flags = tmp_path / "cpuinfo"
    flags.write_text("processor : 0\nflags : fpu sse avx512f avx512_bf16\n")
    assert cpu_has_native_bfloat16(flags)
    flags.write_text("processor : 0\nflags : fpu sse avx2\n")
    assert not cpu_has_native_bfloat16(flags)
    assert not cpu_has_native_bfloat16(tmp_path / "missing")
    with pytest.raises(Exception, match="precision='fp16': choose one of auto, fp32, bf16"):
        build_config({"train": {"precision": "fp16"}})


def test_bfloat16_products_in_training_mode_only() -> None:
    torch.manual_seed(0)
    layer = Linear(256, 128)  # 32768 weights: above the threshold
    small = Linear(8, 4)
    model = torch.nn.ModuleList([layer, small])
    set_matmul_dtype(model, torch.bfloat16)
    assert layer.matmul_dtype == torch.bfloat16 and small.matmul_dtype == torch.float32
    assert layer.weight.numel() >= MIN_LOW_PRECISION_WEIGHTS > small.weight.numel()
    x = torch.randn(32, 256, requires_grad=True)
    exact = torch.nn.functional.linear(x, layer.weight, layer.bias)
    low = layer(x)
    assert low.dtype == torch.float32 and not torch.equal(low, exact)
    torch.testing.assert_close(low, exact, rtol=0, atol=0.02 * exact.abs().max().item())
    weights = torch.randn(32, 128)
    grads_low = torch.autograd.grad((low * weights).sum(), (x, layer.weight, layer.bias))
    grads = torch.autograd.grad((exact * weights).sum(), (x, layer.weight, layer.bias))
    for g_low, g in zip(grads_low, grads, strict=True):
        assert g_low.dtype == torch.float32
        torch.testing.assert_close(g_low, g, rtol=0, atol=0.02 * g.abs().max().item())
    layer.eval()  # evaluation, embeddings and reports: float32, exactly nn.Linear
    assert torch.equal(layer(x), exact)


def test_bfloat16_training_fits_as_well_as_float32() -> None:
    adata = simulate_sc(n_cells=600, n_genes=400, n_cell_types=3, seed=3)
    results = {}
    for precision in ("fp32", "bf16"):
        config = tiny_config(model={"n_hidden": 64, "n_latent": 6},
                             train={"epochs": 8, "precision": precision})
        fitted, result = fit(adata, config, echo=lambda line: None)
        assert fitted.config.train.precision == precision
        results[precision] = result.history.frame["val_loss"].to_numpy()
    assert results["fp32"][-1] < results["fp32"][0]
    assert not np.array_equal(results["fp32"], results["bf16"])  # bf16 did run
    assert abs(results["bf16"][-1] / results["fp32"][-1] - 1) < 0.01


def test_flat_backward_writes_the_gradients_of_backward() -> None:
    """FlatParameters.backward overwrites the flat gradient with what loss.backward()
    would accumulate from zero; a parameter the loss does not use gets 0."""
    reference, flat_net = _net(), _net()
    flat_net.add_module("unused", torch.nn.Linear(2, 2))
    flat = FlatParameters(flat_net)
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(3))
    flat.parameter.grad.fill_(7.0)  # a previous step's gradient is overwritten, not added to
    flat.backward(flat_net[:4](x).pow(2).sum())
    reference(x).pow(2).sum().backward()
    for (name, p), q in zip(flat_net.named_parameters(), reference.parameters(), strict=False):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=1e-7, msg=name)
    assert not flat_net.unused.weight.grad.any() and not flat_net.unused.bias.grad.any()


@pytest.mark.parametrize("max_norm", [0.05, 1e3])
def test_clipping_matches_torch(max_norm: float) -> None:
    """The trainer's clipping scales as clip_grad_norm_ does, above and below the bound."""
    from genevae.train.trainer import clip_gradients

    nets = [_net(), _net()]
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(4))
    for net in nets:
        net(x).pow(2).sum().backward()
    clip_gradients(list(nets[0].parameters()), max_norm)
    torch.nn.utils.clip_grad_norm_(list(nets[1].parameters()), max_norm)
    for p, q in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=0.0)
    norm = torch.nn.utils.get_total_norm([p.grad for p in nets[0].parameters()])
    assert norm <= max_norm * (1 + 1e-6)


@pytest.mark.parametrize("max_norm", [0.05, 10.0, 1e3])
def test_clipping_one_flat_parameter_is_bit_identical_to_torch(max_norm: float) -> None:
    """The flat parameter's shortcut (one norm, one scaling) gives upstream's bits."""
    from genevae.train.trainer import clip_gradients

    for seed in range(5):
        grad = torch.randn(200_003, generator=torch.Generator().manual_seed(seed)) * 0.1 ** seed
        ours, theirs = (torch.nn.Parameter(torch.zeros_like(grad)) for _ in range(2))
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        clip_gradients([ours], max_norm)
        torch.nn.utils.clip_grad_norm_([theirs], max_norm)
        assert torch.equal(ours.grad, theirs.grad)


def test_decoder_dropout_can_differ_from_the_encoder() -> None:
    from genevae.config import ModelConfig
    from genevae.model.vae import VAE

    def rates(net: torch.nn.Module) -> list[float]:
        return [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)]

    same = VAE(20, [], ModelConfig(likelihood="nb", dropout=0.2))
    assert rates(same.encoder) == rates(same.decoder) == [0.2]
    scvi_like = VAE(20, [], ModelConfig(likelihood="nb", dropout=0.1, decoder_dropout=0.0))
    assert rates(scvi_like.encoder) == [0.1] and rates(scvi_like.decoder) == []


def test_dropout_keeps_units_with_probability_one_minus_p_and_rescales() -> None:
    from genevae.model.networks import Dropout

    torch.manual_seed(0)
    dropout, x = Dropout(0.1), torch.rand(400, 500).add_(0.5).requires_grad_()
    out = dropout(x)
    kept = out != 0
    n = kept.numel()
    # binomial(n, 0.9): 5 standard deviations
    assert abs(kept.float().sum().item() - 0.9 * n) < 5 * (0.09 * n) ** 0.5
    torch.testing.assert_close(out[kept], x[kept] / 0.9)
    out.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.9)
    dropout.eval()
    assert torch.equal(dropout(x), x)
    torch.manual_seed(1)
    first = Dropout(0.1)(x)
    torch.manual_seed(1)
    assert torch.equal(Dropout(0.1)(x), first)  # seeded by the global generator


def test_freed_memory_is_kept_on_linux() -> None:
    import sys

    assert keep_freed_memory() is sys.platform.startswith("linux")


def test_train_evaluation_subsample_matches_the_validation_cells(tiny_sc) -> None:
    fitted, result = fit(tiny_sc, tiny_config(), echo=lambda line: None)
    n_val = round(0.1 * tiny_sc.n_obs)
    assert fitted.config.train.n_eval_train_cells == min(MAX_EVAL_TRAIN_CELLS, n_val)
    fitted_all, _ = fit(tiny_sc, tiny_config(train={"n_eval_train_cells": 0}), echo=lambda line: None)
    assert fitted_all.config.train.n_eval_train_cells == 0
