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
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from genevae.errors import GenevaeError
from genevae.files import atomic_write

__all__ = ["BackgroundWriter", "save_checkpoint", "load_checkpoint", "snapshot"]


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, then rename)."""
    with atomic_write(path) as tmp:
        torch.save(state, tmp)


def snapshot(state: Any) -> Any:
    """A copy of ``state`` that later training cannot change: tensors cloned, dicts and
    lists copied (recursively), anything else (numbers, strings) kept."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {key: snapshot(value) for key, value in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(snapshot(value) for value in state)
    return state


class BackgroundWriter:
    """Run file writes on one background thread, in the order they were submitted.

    A checkpoint takes 10-15 ms to serialise and sync (2.4 MB at 715 genes) and a run
    writes up to two per epoch, with the history: 0.4 s of a 20-epoch run that the
    training steps need not wait for (issue 19). Each write is still atomic (see
    :func:`save_checkpoint`); :meth:`flush` waits for all of them and raises the first
    error, which a later :meth:`submit` raises too. Give it data that nothing changes
    afterwards (:func:`snapshot`).
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def submit(self, write: Callable[..., None], *args: Any) -> None:
        """Queue ``write(*args)``; raise the error of an earlier write that failed."""
        self._raise_failed()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genevae-write")
        self._pending.append(self._executor.submit(write, *args))

    def flush(self) -> None:
        """Wait until every queued write is on disk; raise the first error."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def _raise_failed(self) -> None:
        still = []
        for future in self._pending:
            if not future.done():
                still.append(future)
            elif future.exception() is not None:
                self._pending = []
                raise future.exception()
        self._pending = still


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
