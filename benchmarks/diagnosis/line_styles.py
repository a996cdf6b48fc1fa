"""How the plain PyTorch loops print their logs: one :class:`Printer` per line style.

Each style imitates what real training scripts print (the issue 18 brief lists them);
``tqdm`` is the real tqdm progress bar writing to the log file, carriage returns and
all. The Keras styles are a PyTorch loop printing Keras ``fit()`` output.

===================  ==================================================================
style                one epoch looks like
===================  ==================================================================
``reference``        ``epoch 003 | train loss=… recon=… kl=… | val loss=…``
``bracket``          ``Epoch [3/50] Loss: … Recon: … KL: … Val: …``
``terse``            ``ep 3 train_loss … kl … val_loss …``
``kv_comma``         ``epoch=3, loss=…, kld=…, val_loss=…``
``tqdm``             ``Epoch 3/50: 100%|##########| 5/5 [00:00<00:00, …it/s, loss=…, kl=…, val_loss=…]``
``jsonl``            ``{"epoch": 3, "train_loss": …, "train_recon": …, "train_kl": …, "val_loss": …}``
``pytorch_example``  ``Train Epoch: 3 [0/504 (0%)]\tLoss: …`` then ``====> Epoch: 3 Average loss: …``
                     and ``====> Test set loss: …`` (the PyTorch examples' VAE)
``per_step``         ``step 120 loss … kl …`` every few steps, ``step 120 val_loss … val_kl …``
                     after each validation; no epoch numbers at all
``dict``             ``{'epoch': 3, 'loss': …, 'recon': …, 'kl': …, 'val_loss': …}``
``logging``          ``2025-03-04 10:00:03,120 - vae - INFO - Epoch 3/50 - loss: … - …``
``keras_bar``        ``Epoch 3/50`` then ``5/5 [==============================] - 0s 9ms/step
                     - loss: … - reconstruction_loss: … - kl_loss: … - val_loss: …``
``keras_v2``         ``Epoch 3/50`` then ``5/5 - 0s - loss: … - kl_loss: … - val_loss: …
                     - 0s/epoch - 9ms/step`` (``verbose=2``)
===================  ==================================================================
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import TextIO

from tqdm import tqdm
from train_loop import EpochMetrics

__all__ = ["make_printer", "LINE_STYLES", "KERAS_STYLES"]

#: Print a per-step line every this many optimiser steps (``per_step``).
PER_STEP_EVERY = 5
#: Batches between the PyTorch example's "Train Epoch" lines.
EXAMPLE_LOG_INTERVAL = 4
#: The ``logging`` style's clock starts here (a fixed date keeps diffs small).
LOG_CLOCK_START = datetime.datetime(2025, 3, 4, 10, 0, 0)


class _Printer:
    def __init__(self, handle: TextIO, header: str = "") -> None:
        self.out = handle
        if header:
            self.out.write(header + "\n")

    def on_step(self, epoch: int, step: int, loss: float, recon: float, kl: float) -> None:
        pass

    def on_epoch(self, m: EpochMetrics) -> None:
        self.out.write(self.line(m) + "\n")

    def line(self, m: EpochMetrics) -> str:
        raise NotImplementedError

    def close(self) -> None:
        self.out.close()


class _Reference(_Printer):
    def line(self, m):
        return (f"epoch {m.epoch:03d} | train loss={m.train_loss:.4f} recon={m.train_recon:.4f} "
                f"kl={m.train_kl:.4f} | val loss={m.val_loss:.4f}")


class _Bracket(_Printer):
    def line(self, m):
        return (f"Epoch [{m.epoch}/{m.n_epochs}] Loss: {m.train_loss:.1f} Recon: "
                f"{m.train_recon:.1f} KL: {m.train_kl:.1f} Val: {m.val_loss:.1f}")


class _Terse(_Printer):
    def line(self, m):
        return f"ep {m.epoch} train_loss {m.train_loss:.1f} kl {m.train_kl:.1f} val_loss {m.val_loss:.1f}"


class _KvComma(_Printer):
    def line(self, m):
        return (f"epoch={m.epoch}, loss={m.train_loss:.3f}, kld={m.train_kl:.3f}, "
                f"val_loss={m.val_loss:.3f}")


class _Jsonl(_Printer):
    def line(self, m):
        return json.dumps({"epoch": m.epoch, "train_loss": m.train_loss,
                           "train_recon": m.train_recon, "train_kl": m.train_kl,
                           "kl_weight": m.kl_weight, "val_loss": m.val_loss})


class _Dict(_Printer):
    def line(self, m):
        return str({"epoch": m.epoch, "loss": round(m.train_loss, 4),
                    "recon": round(m.train_recon, 4), "kl": round(m.train_kl, 4),
                    "val_loss": round(m.val_loss, 4)})


class _Logging(_Printer):
    def line(self, m):
        clock = LOG_CLOCK_START + datetime.timedelta(seconds=m.step * 0.05)
        stamp = clock.strftime("%Y-%m-%d %H:%M:%S,") + f"{clock.microsecond // 1000:03d}"
        return (f"{stamp} - vae - INFO - Epoch {m.epoch}/{m.n_epochs} - loss: {m.train_loss:.2f}"
                f" - recon: {m.train_recon:.2f} - kl: {m.train_kl:.2f} - val_loss: {m.val_loss:.2f}")


class _PyTorchExample(_Printer):
    """The PyTorch examples' ``vae/main.py``: losses are summed over the batch's cells
    and divided by the number of cells only in the epoch summary."""

    def __init__(self, handle, header="", n_train: int = 0, batch_size: int = 128):
        super().__init__(handle, header)
        self.n_train, self.batch_size, self.batch_idx = n_train, batch_size, 0

    def on_step(self, epoch, step, loss, recon, kl):
        if self.batch_idx % EXAMPLE_LOG_INTERVAL == 0:
            seen = self.batch_idx * self.batch_size
            self.out.write(f"Train Epoch: {epoch} [{seen}/{self.n_train} "
                           f"({100.0 * seen / self.n_train:.0f}%)]\tLoss: {loss:.6f}\n")
        self.batch_idx += 1

    def line(self, m):
        self.batch_idx = 0
        return (f"====> Epoch: {m.epoch} Average loss: {m.train_loss:.4f}\n"
                f"====> Test set loss: {m.val_loss:.4f}")


class _PerStep(_Printer):
    def on_step(self, epoch, step, loss, recon, kl):
        if step % PER_STEP_EVERY == 0:
            self.out.write(f"step {step} loss {loss:.2f} kl {kl:.3f}\n")

    def line(self, m):
        return f"step {m.step} val_loss {m.val_loss:.2f} val_kl {m.val_kl:.3f}"


class _Tqdm(_Printer):
    """The real tqdm bar, one per epoch, written to the log file (``ascii=True``)."""

    def __init__(self, handle, header=""):
        super().__init__(handle, header)
        self.bar = None
        self.sums = [0.0, 0.0, 0]

    def on_step(self, epoch, step, loss, recon, kl):
        if self.bar is None:
            self.bar = tqdm(total=self._n_batches, desc=f"Epoch {epoch}/{self._n_epochs}",
                            file=self.out, ascii=True, mininterval=0)
            self.sums = [0.0, 0.0, 0]
        self.sums = [self.sums[0] + loss, self.sums[1] + kl, self.sums[2] + 1]
        n = self.sums[2]
        self.bar.set_postfix(loss=f"{self.sums[0] / n:.1f}", kl=f"{self.sums[1] / n:.2f}",
                             refresh=False)
        self.bar.update(1)

    def on_epoch(self, m):
        self.bar.set_postfix(loss=f"{m.train_loss:.1f}", kl=f"{m.train_kl:.2f}",
                             val_loss=f"{m.val_loss:.1f}")
        self.bar.close()
        self.bar = None


class _KerasBar(_Printer):
    WIDTH = 30  # Keras' progress bar width

    def line(self, m):
        per_step_ms = 1000 * m.seconds / m.n_batches
        return (f"Epoch {m.epoch}/{m.n_epochs}\n{m.n_batches}/{m.n_batches} "
                f"[{'=' * self.WIDTH}] - {m.seconds:.0f}s {per_step_ms:.0f}ms/step"
                f" - loss: {m.train_loss:.4f} - reconstruction_loss: {m.train_recon:.4f}"
                f" - kl_loss: {m.train_kl:.4f} - val_loss: {m.val_loss:.4f}"
                f" - val_reconstruction_loss: {m.val_recon:.4f} - val_kl_loss: {m.val_kl:.4f}")


class _KerasV2(_Printer):
    def line(self, m):
        per_step_ms = 1000 * m.seconds / m.n_batches
        return (f"Epoch {m.epoch}/{m.n_epochs}\n{m.n_batches}/{m.n_batches} - {m.seconds:.0f}s"
                f" - loss: {m.train_loss:.4f} - kl_loss: {m.train_kl:.4f}"
                f" - val_loss: {m.val_loss:.4f} - {m.seconds:.0f}s/epoch - {per_step_ms:.0f}ms/step")


_STYLES = {
    "reference": _Reference, "bracket": _Bracket, "terse": _Terse, "kv_comma": _KvComma,
    "tqdm": _Tqdm, "jsonl": _Jsonl, "pytorch_example": _PyTorchExample,
    "per_step": _PerStep, "dict": _Dict, "logging": _Logging,
    "keras_bar": _KerasBar, "keras_v2": _KerasV2,
}
KERAS_STYLES = ("keras_bar", "keras_v2")
LINE_STYLES = tuple(s for s in _STYLES if s not in KERAS_STYLES)
#: File name of each style's log (what a user would redirect stdout to).
LOG_NAMES = {"jsonl": "train_log.jsonl", "keras_bar": "keras_fit.txt", "keras_v2": "keras_fit.txt"}


def make_printer(style: str, folder: Path, *, header: str, n_train: int, batch_size: int,
                 n_batches: int, n_epochs: int) -> tuple[_Printer, Path]:
    """The printer of ``style`` writing into ``folder``, and the log's path."""
    path = folder / LOG_NAMES.get(style, "train.log")
    handle = path.open("w")
    if style == "pytorch_example":
        printer = _PyTorchExample(handle, header, n_train, batch_size)
    else:
        printer = _STYLES[style](handle, header)
    printer._n_batches, printer._n_epochs = n_batches, n_epochs
    return printer, path
