"""The diagnosis during training: say when a problem appears, and when it stops holding.

The trainer calls :meth:`LiveMonitor.update` with the growing history after every
epoch. Only the rules that make sense for a run in progress take part
(:data:`~genevae.diagnosis.rules.LIVE_RULES`: divergence, instability, collapse,
overfitting); "not converged" or the KL band mean nothing before the end.

The live lines and the final verdict agree by construction: each live rule is the
same function the final diagnosis runs, and the monitor reports every change of its
state, so the last thing it said about a problem is what that rule finds at the last
epoch.
"""

from __future__ import annotations

from genevae.diagnosis import codes
from genevae.diagnosis.rules import LIVE_RULES
from genevae.history.history import History

__all__ = ["LiveMonitor"]

#: Codes that name the same problem (collapse ends either way), for the monitor's state.
_SAME_PROBLEM = {codes.LATE_COLLAPSE: codes.POSTERIOR_COLLAPSE}


class LiveMonitor:
    """Turns live findings into lines: once when a problem appears, once when it clears.

    Examples
    --------
    After each epoch::

        for line in monitor.update(history):
            print(line)

    prints, once, e.g. ``epoch 012: Posterior collapse: KL per dimension below 0.01
    from epoch 8; ... Lower β (--beta 0.1), ...``, and, should KL come back,
    ``epoch 030: No posterior collapse (warned at epoch 12; no longer holds).``

    Attributes
    ----------
    warned
        Problem -> epoch of its warning, for the problems that hold now.
    """

    def __init__(self) -> None:
        self.warned: dict[str, int] = {}

    def update(self, history: History) -> list[str]:
        """Lines for the problems that appear or clear at the history's last epoch.

        A problem is ``epoch NNN: <title>. <recommendation>`` when its rule first warns
        or fails, not repeated while it holds (even if its severity grows), and
        ``epoch NNN: <title> (warned at epoch K; no longer holds).`` when its rule passes
        again.
        """
        if not len(history):
            return []
        epoch = int(history.epochs[-1])
        lines = []
        for rule in LIVE_RULES:
            for finding in rule(history):
                problem = _SAME_PROBLEM.get(finding.code, finding.code)
                if finding.severity.is_problem and problem not in self.warned:
                    self.warned[problem] = epoch
                    lines.append(f"epoch {epoch:03d}: {finding.title}. {finding.recommendation}")
                elif not finding.severity.is_problem and problem in self.warned:
                    since = self.warned.pop(problem)
                    lines.append(f"epoch {epoch:03d}: {finding.title} (warned at epoch "
                                 f"{since:03d}; no longer holds).")
        return lines
