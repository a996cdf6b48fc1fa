"""Checkpoints: written atomically, loaded only as tensors and plain data.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts, so that
``torch.load(weights_only=True)`` loads it. That loader refuses anything that
would execute code under pickle; :func:`load_checkpoint` turns the refusal into a
clear message.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from genevae.errors import GenevaeError
from genevae.files import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, then rename)."""
    with atomic_write(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``.

    Raises
    ------
    GenevaeError
        If the file is missing, corrupt, or holds objects that plain-data
        loading refuses (such a file could run code; it is never unpickled).
    """
    path = Path(path)
    if not path.is_file():
        raise GenevaeError(f"checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise GenevaeError(
            f"checkpoint {path} was refused: it contains Python objects beyond tensors and "
            f"plain data, which could run code when loaded ({str(exc).splitlines()[0]}). "
            "Only load checkpoints written by genevae, or ask the sender to re-export it."
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise GenevaeError(
            f"checkpoint {path} cannot be read: the file is corrupt or truncated ({exc})."
        ) from None
    if not isinstance(state, dict):
        raise GenevaeError(f"checkpoint {path} is not a genevae checkpoint.")
    return state
