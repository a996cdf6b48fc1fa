"""All parameters of a model as views into one flat tensor, and their gradients too.

The optimiser then updates one tensor and gradient clipping takes one norm, instead
of a Python loop and a kernel launch per parameter tensor (a VAE has ~16): on CPU this
is ~0.1-0.4 ms of every training step. The update is AdamW's, element by element;
its vectorised kernel over one long tensor may round the last bit differently from
its scalar path over short ones. Checkpoints keep the optimiser state per parameter
tensor, so they do not depend on the layout (resumable with or without DDP).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["FlatParameters"]


class FlatParameters:
    """Make every parameter of ``model`` (on one device, one dtype) a view into one flat
    parameter, and every ``.grad`` a view into its flat gradient.

    :meth:`backward` writes the gradients of a loss straight into the flat gradient (no
    zeroing pass, no accumulation pass). Plain ``loss.backward()`` works too: autograd
    accumulates into an existing ``.grad`` in place, so zero it in place first
    (:meth:`zero_grad`, or the optimiser's ``zero_grad(set_to_none=False)``), never set
    it to None. Moving the model to another device afterwards undoes the sharing.

    Attributes
    ----------
    parameter
        The flat parameter: give ``[parameter]`` to the optimiser and the clipping.
    shapes
        The shapes of the model's parameters, in ``model.parameters()`` order.
    """

    def __init__(self, model: nn.Module) -> None:
        params = list(model.parameters())
        if not params or not all(p.requires_grad for p in params):
            raise ValueError("FlatParameters needs a model whose parameters all train")
        flat = torch.cat([p.detach().reshape(-1) for p in params])
        grad = torch.zeros_like(flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.data = flat[offset : offset + n].view_as(p)
            p.grad = grad[offset : offset + n].view_as(p)
            offset += n
        self.shapes = [p.shape for p in params]
        self._params = params
        self.parameter = nn.Parameter(flat)
        self.parameter.grad = grad

    def zero_grad(self) -> None:
        self.parameter.grad.zero_()

    def backward(self, loss: torch.Tensor) -> None:
        """Set the flat gradient to d loss / d parameters (0 for a parameter ``loss``
        does not depend on), overwriting the previous step's."""
        grads = torch.autograd.grad(loss, self._params, allow_unused=True)
        torch.cat([torch.zeros(p.numel(), dtype=p.dtype, device=p.device) if g is None
                   else g.reshape(-1) for p, g in zip(self._params, grads, strict=True)],
                  out=self.parameter.grad)

    def optimizer_state(self, optimizer: Any) -> dict[str, Any]:
        """The state dict of ``optimizer`` (over the flat parameter) as it would be over
        the model's parameters: one entry of each per-element state per tensor."""
        state = optimizer.state_dict()
        flat_state = state["state"].get(0)
        per_tensor = {} if flat_state is None else {
            i: {key: self._split(value, piece) for key, value in flat_state.items()}
            for i, piece in enumerate(self._pieces())}
        groups = [{**group, "params": list(range(len(self.shapes)))}
                  for group in state["param_groups"]]
        return {"state": per_tensor, "param_groups": groups}

    def load_optimizer_state(self, optimizer: Any,
                             state: Mapping[str, Any]) -> None:
        """Load a per-tensor state dict (from :meth:`optimizer_state` or an optimiser over
        the model's parameters) into ``optimizer`` over the flat parameter."""
        n = len(self.shapes)
        groups = state["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != n:
            raise ValueError(f"the optimiser state is for {sum(len(g['params']) for g in groups)} "
                             f"parameter tensors; this model has {n}")
        per_tensor = state["state"]
        flat_state: dict[str, Any] = {}
        if per_tensor:
            first = per_tensor[groups[0]["params"][0]]
            for key, value in first.items():  # per element (shaped) or shared (0-d step)
                if _per_element(value):
                    flat_state[key] = torch.cat([per_tensor[i][key].reshape(-1)
                                                 for i in groups[0]["params"]])
                else:
                    flat_state[key] = value
        optimizer.load_state_dict({"state": {0: flat_state} if flat_state else {},
                                   "param_groups": [{**groups[0], "params": [0]}]})

    def _pieces(self) -> list[tuple[int, torch.Size]]:
        offset, pieces = 0, []
        for shape in self.shapes:
            pieces.append((offset, shape))
            offset += shape.numel()
        return pieces

    @staticmethod
    def _split(value: Any, piece: tuple[int, torch.Size]) -> Any:
        offset, shape = piece
        if _per_element(value):
            return value[offset : offset + shape.numel()].reshape(shape).clone()
        return value.clone() if isinstance(value, torch.Tensor) else value


def _per_element(value: Any) -> bool:
    """An optimiser state entry with one value per parameter element (AdamW's moments),
    as opposed to a shared one (its 0-d step count)."""
    return isinstance(value, torch.Tensor) and value.dim() > 0
