"""Self-contained HTML reports built from a list of sections, and their plots."""

from medswap.report.html import ReportSection, render_report, write_report

__all__ = ["ReportSection", "render_report", "write_report"]
