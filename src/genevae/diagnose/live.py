"""The diagnosis during training: warn once, at the epoch a problem appears.

The trainer calls :meth:`LiveMonitor.update` with the growing history after every
epoch. Only the rules that make sense for a run in progress take part
(:data:`~genevae.diagnose.rules.LIVE_RULES`: divergence, instability, collapse,
overfitting); "not converged" or the KL band mean nothing before the end.
"""

from __future__ import annotations

from genevae.diagnose.findings import Severity
from genevae.diagnose.rules import LIVE_RULES
from genevae.history.history import History

__all__ = ["LiveMonitor"]


class LiveMonitor:
    """Turns live findings into warning lines, each problem (code) warned once.

    Examples
    --------
    After each epoch::

        for line in monitor.update(history):
            print(line)

    prints, once, e.g. ``epoch 012: Posterior collapse: KL per dimension below 0.01
    for 5 epochs (0.0031 at the end). Lower β (--beta 0.1), ...``.
    """

    def __init__(self) -> None:
        self.warned: set[str] = set()

    def update(self, history: History) -> list[str]:
        """Lines for the problems that appear at the history's last epoch.

        Each line is ``epoch NNN: <title>. <recommendation>``; a code already
        warned about is not repeated, even if its severity grows.
        """
        if not len(history):
            return []
        epoch = int(history.epochs[-1])
        lines = []
        for rule in LIVE_RULES:
            for finding in rule(history):
                if finding.severity is Severity.OK or finding.code in self.warned:
                    continue
                self.warned.add(finding.code)
                lines.append(f"epoch {epoch:03d}: {finding.title}. {finding.recommendation}")
        return lines
