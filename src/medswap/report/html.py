"""A self-contained ``report.html``: one page, images embedded, opens offline.

A report is a title, an optional plain-language verdict, and a list of
:class:`ReportSection` (a title and an HTML body). Every feature adds its own sections: the
keypoint invariance tables and plots, and later the privacy table, the clinical measures'
agreement or a sweep frontier, simply by appending sections built with the helpers here
(:func:`table_html`, :func:`img_html`, :func:`paragraphs`). Images are embedded as base64 PNG,
so the file can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from medswap.errors import OutputError


@dataclass(frozen=True)
class ReportSection:
    """One section of a report: a heading and trusted HTML made with this module's helpers."""

    title: str
    html: str

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "section"


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def png_data_uri(png: bytes | str | Path) -> str:
    """A ``data:image/png;base64,...`` URI from PNG bytes or a PNG file."""
    data = Path(png).read_bytes() if isinstance(png, (str, Path)) else png
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def img_html(png: bytes | str | Path, alt: str, caption: str = "") -> str:
    """An embedded image in a figure, with its caption."""
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{png_data_uri(png)}" alt="{escape(alt)}">{cap}</figure>'


def _cell(value: object, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return '<td class="na">n/a</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:.{digits}f}</td>'
    return f"<td>{escape(value)}</td>"


def table_html(
    rows: Sequence[Sequence[object]], header: Sequence[str], digits: int = 3, caption: str = ""
) -> str:
    """An HTML table; floats are rounded, NaN/None shown as n/a."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v, digits) for v in row) + "</tr>" for row in rows)
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def paragraphs(lines: Iterable[str]) -> str:
    """Plain text lines as escaped paragraphs."""
    return "".join(f"<p>{escape(line)}</p>" for line in lines)


def bullet_list(lines: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>"


def render_report(
    title: str,
    sections: Sequence[ReportSection],
    verdict: Sequence[str] = (),
    meta: dict | None = None,
    warning: str = "",
) -> str:
    """The report as one HTML string; ``warning`` is a banner above everything else."""
    import jinja2

    from medswap import __version__

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("medswap.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    template = env.get_template("report.html")
    return template.render(
        title=title,
        verdict=list(verdict),
        sections=list(sections),
        meta=meta or {},
        warning=warning,
        version=__version__,
        created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_report(
    path: str | Path,
    title: str,
    sections: Sequence[ReportSection],
    verdict: Sequence[str] = (),
    meta: dict | None = None,
    warning: str = "",
) -> Path:
    """Write the report; the folder must exist."""
    path = Path(path)
    try:
        path.write_text(render_report(title, sections, verdict, meta, warning), encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the report ({exc.strerror})", path) from None
    return path
