"""The self-contained HTML report of a run folder."""

from genevae.report.page import render_report, write_report

__all__ = ["render_report", "write_report"]
