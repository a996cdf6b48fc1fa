"""FlatAdamW against torch.optim.AdamW(fused=True): the same updates, the same state dict."""

import pytest
import torch

from genevae.train.adamw import FlatAdamW


def _gradients(n_steps, size, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(size, generator=generator) * 10 ** (i % 3) for i in range(n_steps)]


def _torch_run(start, grads, lr, weight_decay):
    parameter = torch.nn.Parameter(start.clone())
    optimizer = torch.optim.AdamW([parameter], lr=lr, weight_decay=weight_decay, fused=True)
    for grad in grads:
        parameter.grad = grad.clone()
        optimizer.step()
    return parameter, optimizer


def _flat_run(start, grads, lr, weight_decay, optimizer=None, parameter=None):
    parameter = parameter if parameter is not None else torch.nn.Parameter(start.clone())
    optimizer = optimizer or FlatAdamW(parameter, lr=lr, weight_decay=weight_decay)
    for grad in grads:
        parameter.grad = grad.clone()
        optimizer.step()
    return parameter, optimizer


@pytest.mark.parametrize(("lr", "weight_decay"), [(1e-3, 0.01), (3e-2, 0.0), (1e-4, 0.5)])
def test_updates_are_bit_identical_to_torch_fused_adamw(lr, weight_decay):
    start = torch.randn(1000, generator=torch.Generator().manual_seed(1))
    grads = _gradients(25, 1000)
    expected, torch_optimizer = _torch_run(start, grads, lr, weight_decay)
    got, flat_optimizer = _flat_run(start, grads, lr, weight_decay)
    assert torch.equal(got.detach(), expected.detach())
    ours, theirs = flat_optimizer.state_dict(), torch_optimizer.state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    assert ours["state"].keys() == theirs["state"].keys()
    for key, value in theirs["state"][0].items():
        assert ours["state"][0][key].dtype == value.dtype
        assert torch.equal(ours["state"][0][key], value), key


def test_state_moves_between_torch_adamw_and_flat_adamw_mid_run():
    start = torch.randn(300, generator=torch.Generator().manual_seed(2))
    grads = _gradients(12, 300, seed=3)
    expected, _ = _torch_run(start, grads, 1e-3, 0.01)
    # first half with torch, second half with FlatAdamW loaded from torch's state dict
    half, torch_optimizer = _torch_run(start, grads[:6], 1e-3, 0.01)
    parameter = torch.nn.Parameter(half.detach().clone())
    flat = FlatAdamW(parameter, lr=1e-3, weight_decay=0.01)
    flat.load_state_dict(torch_optimizer.state_dict())
    got, flat = _flat_run(None, grads[6:], 1e-3, 0.01, flat, parameter)
    assert torch.equal(got.detach(), expected.detach())
    # and back: torch resumes from FlatAdamW's state dict
    parameter = torch.nn.Parameter(start.clone())
    flat = FlatAdamW(parameter, lr=1e-3, weight_decay=0.01)
    _flat_run(None, grads[:6], 1e-3, 0.01, flat, parameter)
    resumed = torch.nn.Parameter(parameter.detach().clone())
    optimizer = torch.optim.AdamW([resumed], lr=1e-3, weight_decay=0.01, fused=True)
    optimizer.load_state_dict(flat.state_dict())
    for grad in grads[6:]:
        resumed.grad = grad.clone()
        optimizer.step()
    assert torch.equal(resumed.detach(), expected.detach())


def test_a_state_for_several_parameters_is_refused():
    parameter = torch.nn.Parameter(torch.zeros(3))
    state = {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}
    with pytest.raises(ValueError, match="has 2"):
        FlatAdamW(parameter, lr=1e-3, weight_decay=0.0).load_state_dict(state)
