"""AdamW over the trainer's one flat parameter, without the ``torch.optim`` machinery.

``torch.optim``'s optimisers import ``torch._dynamo`` when they are built: 1.0-1.4 s of
a short run's wall time on 2 cores (issue 19), for a feature a training loop on one flat
parameter never uses. :class:`FlatAdamW` calls the kernel that
``torch.optim.AdamW(fused=True)`` calls, ``torch._fused_adamw_``, with the same step
count bookkeeping, so its updates are bit-identical to torch's; and it reads and writes
``torch.optim``'s state-dict format, so a checkpoint resumes under either (the trainer
uses ``torch.optim.AdamW`` under DDP, whose parameters stay separate tensors).
``tests/test_adamw.py`` checks both against the installed torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["FlatAdamW"]

#: AdamW's moment decay rates and denominator term: torch.optim.AdamW's defaults.
BETAS = (0.9, 0.999)
EPS = 1e-8


class FlatAdamW:
    """AdamW (decoupled weight decay, Loshchilov and Hutter 2019) on one parameter.

    Parameters
    ----------
    parameter
        The flat parameter; its ``.grad`` must be set before :meth:`step`.
    lr, weight_decay
        As in ``torch.optim.AdamW``.

    Attributes
    ----------
    param_groups
        One group, keyed as ``torch.optim.AdamW``'s (``lr`` may be changed between steps).
    state
        ``step`` (0-d float32), ``exp_avg`` and ``exp_avg_sq`` (shaped as the parameter);
        empty before the first step.
    """

    def __init__(self, parameter: torch.Tensor, lr: float, weight_decay: float) -> None:
        self.parameter = parameter
        self.param_groups: list[dict[str, Any]] = [{
            "lr": lr, "betas": BETAS, "eps": EPS, "weight_decay": weight_decay,
            "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
            "differentiable": False, "fused": True, "decoupled_weight_decay": True,
            "params": [parameter],
        }]
        self.state: dict[str, torch.Tensor] = {}

    def step(self) -> None:
        """One AdamW update of the parameter from its ``.grad``."""
        group = self.param_groups[0]
        if not self.state:
            self.state = {
                "step": torch.zeros((), dtype=torch.float32, device=self.parameter.device),
                "exp_avg": torch.zeros_like(self.parameter),
                "exp_avg_sq": torch.zeros_like(self.parameter),
            }
        step = self.state["step"]
        step.add_(1)  # counted before the update, as torch.optim's fused path does
        beta1, beta2 = group["betas"]
        with torch.no_grad():
            torch._fused_adamw_(
                [self.parameter], [self.parameter.grad], [self.state["exp_avg"]],
                [self.state["exp_avg_sq"]], [], [step], amsgrad=False, lr=group["lr"],
                beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                maximize=False, grad_scale=None, found_inf=None,
            )

    def state_dict(self) -> dict[str, Any]:
        """``torch.optim.AdamW.state_dict()``'s layout: the state of parameter 0."""
        groups = [{**group, "params": [0]} for group in self.param_groups]
        return {"state": {0: dict(self.state)} if self.state else {}, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state dict of this class or of ``torch.optim.AdamW`` over one parameter."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != 1:
            raise ValueError("FlatAdamW loads the state of an optimiser over one parameter; "
                             f"this one has {sum(len(g['params']) for g in groups)}")
        self.param_groups = [{**self.param_groups[0], **groups[0], "params": [self.parameter]}]
        state = state_dict["state"].get(groups[0]["params"][0], {})
        device = self.parameter.device
        self.state = {} if not state else {
            "step": torch.as_tensor(state["step"], dtype=torch.float32).to(device).clone(),
            **{key: state[key].to(device=device, dtype=self.parameter.dtype).clone()
               .reshape(self.parameter.shape) for key in ("exp_avg", "exp_avg_sq")},
        }
