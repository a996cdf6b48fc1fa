"""The reference log line, one per epoch.

``epoch 001 | train loss=0.8684 recon=0.8440 kl=0.0488 | val loss=0.7531``
(reference document, "Interpreting Training Output"). Numbers are printed in the
run's loss convention with four decimals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["format_epoch_line"]


def format_epoch_line(record: Mapping[str, float]) -> str:
    """Format one epoch's record (history column names) as the reference line.

    The validation part is left out when the record has no ``val_loss``.
    """
    line = (
        f"epoch {int(record['epoch']):03d} | train loss={record['train_loss']:.4f} "
        f"recon={record['train_recon']:.4f} kl={record['train_kl']:.4f}"
    )
    val_loss = record.get("val_loss")
    if val_loss is not None and not math.isnan(val_loss):
        line += f" | val loss={val_loss:.4f}"
    return line
