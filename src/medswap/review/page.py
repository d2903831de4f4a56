"""The review page: one self-contained HTML file, built from records and JPEG bytes.

Everything is inline (styles, script, frames as ``data:`` URIs) and a Content-Security-Policy
forbids loading anything else, so the page opens from disk, offline, in Chromium or Firefox,
and cannot call out to any server but the one that served it. The page marked for sharing is
built from the output's frames only; :func:`render_page` refuses to put an original frame in
it, whatever its caller passes.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from medswap import __version__
from medswap.review.frames import data_uri
from medswap.review.load import sample_frames
from medswap.review.model import FlagKind, FrameFlag, ReviewSet, Verdict, VideoReview

#: The page's style and behaviour, kept as files beside this module and inlined in each page.
CSS = resources.files("medswap.review").joinpath("page.css").read_text(encoding="utf-8")
SCRIPT = resources.files("medswap.review").joinpath("page.js").read_text(encoding="utf-8")

_VERDICT_WORD = {
    Verdict.PASS: "PASS",
    Verdict.WARN: "LOOK",
    Verdict.FAIL: "FAIL",
    Verdict.NONE: "N/A",
}
_KIND_WORD = {
    FlagKind.LEAK: "audit leak",
    FlagKind.NO_FACE: "no face in output",
    FlagKind.OBSCURED: "obscured",
    FlagKind.BRIDGED: "bridged",
    FlagKind.SAFETY_NET: "safety net",
    FlagKind.HAND: "hand in front",
    FlagKind.SAMPLE: "sample",
}


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _summary(video: VideoReview) -> str:
    rows = "".join(
        f'<tr class="line" data-verdict="{esc(s.verdict.value)}">'
        f'<th scope="row">{esc(s.label)}</th>'
        f'<td><span class="pill {esc(s.verdict.name.lower())}">'
        f"{_VERDICT_WORD[s.verdict]}</span></td><td>{esc(s.detail)}</td></tr>"
        for s in video.summary
    )
    return f'<table class="summary">{rows}</table>'


def _figure(index: int, flags: list[FrameFlag], still: bytes, original: bytes | None) -> str:
    kinds = [f.kind for f in flags] or [FlagKind.SAMPLE]
    reason = "; ".join(f.text for f in flags) or "sample (not flagged)"
    tags = "".join(f'<span class="tag {esc(k.value)}">{esc(_KIND_WORD[k])}</span>' for k in kinds)
    orig = ""
    if original is not None:
        orig = (
            f'<img class="original" data-kind="original" hidden alt="original frame {index}" '
            f'src="{data_uri(original)}">'
            '<button type="button" class="show-original">show original</button>'
        )
    flagged = "flagged" if flags else "sample"
    return (
        f'<figure class="still {flagged}" data-frame="{index}" '
        f'data-kinds="{esc(" ".join(k.value for k in kinds))}">'
        f'<img class="output" data-kind="output" alt="output frame {index}" '
        f'src="{data_uri(still)}">{orig}'
        f'<figcaption><b>frame {index}</b> {tags}<span class="reason">{esc(reason)}</span>'
        "</figcaption></figure>"
    )


def _decision_panel(video: VideoReview) -> str:
    return f"""
<div class="decision" data-file="{esc(video.file)}" data-sha256="{esc(video.sha256)}">
  <h3>Decision on this video</h3>
  <div class="ranges">
    <p class="hint">Frame ranges (optional): reject a range to hold the whole file back,
    or approve one with a note on what you checked.</p>
    <ol class="range-list"></ol>
    <label>frames <input class="r-first" type="number" min="0" max="{video.frames - 1}"
      aria-label="first frame"></label>
    <label>to <input class="r-last" type="number" min="0" max="{video.frames - 1}"
      aria-label="last frame"></label>
    <select class="r-decision" aria-label="range decision">
      <option value="approved">approve</option><option value="rejected">reject</option>
    </select>
    <input class="r-note" type="text" placeholder="note on this range" aria-label="range note">
    <button type="button" class="add-range">add range</button>
  </div>
  <label class="note">Note <textarea class="v-note" rows="2"
    placeholder="what you checked, or why you reject it"></textarea></label>
  <div class="buttons">
    <button type="button" class="approve" data-decision="approved">Approve video</button>
    <button type="button" class="reject" data-decision="rejected">Reject video</button>
  </div>
  <p class="result" role="status"></p>
</div>"""


def _video_section(
    video: VideoReview,
    picks: list[int],
    stills: dict[int, bytes],
    originals: dict[int, bytes] | None,
    number: int,
) -> str:
    flagged = [i for i in picks if i in video.flags]
    figures = "".join(
        _figure(i, video.flags.get(i, []), stills[i], (originals or {}).get(i))
        for i in picks
        if i in stills
    )
    counts: dict[FlagKind, int] = {}
    for i in flagged:
        for kind in {f.kind for f in video.flags[i]}:
            counts[kind] = counts.get(kind, 0) + 1
    legend = " ".join(
        f'<span class="tag {esc(k.value)}">{esc(_KIND_WORD[k])}: {n}</span>'
        for k, n in sorted(counts.items(), key=lambda kv: kv[0].value)
    )
    settings = ", ".join(
        f"{k} {v}" for k, v in video.settings.items() if v is not None and k != "max_frames"
    )
    worst = max((s.verdict for s in video.summary), key=_severity, default=Verdict.NONE)
    staged = '<span class="badge">awaiting approval</span>' if video.staged else ""
    return f"""
<section class="video" id="video-{number}" data-file="{esc(video.file)}"
  data-verdict="{esc(worst.value)}">
  <header class="video-head">
    <h2>{esc(video.release_name)} {staged}</h2>
    <p class="facts">{video.frames} frames, {video.width}x{video.height}; file
      <code>{esc(video.file)}</code>; SHA-256 <code title="{esc(video.sha256)}">
      {esc(video.sha256[:16])}…</code><br>settings: {esc(settings or "not recorded")}</p>
  </header>
  {_summary(video)}
  <h3>Frames to look at: {len(flagged)} flagged, {len(picks) - len(flagged)} sampled
    <small>(output frames; click to enlarge)</small></h3>
  <p class="legend">{legend or "no frame flagged"}</p>
  <div class="sheet">{figures}</div>
  {_decision_panel(video)}
</section>"""


def _severity(v: Verdict) -> int:
    return {Verdict.NONE: 0, Verdict.PASS: 1, Verdict.WARN: 2, Verdict.FAIL: 3}[v]


def render_page(
    reviews: ReviewSet,
    picks: dict[str, list[int]],
    stills: dict[str, dict[int, bytes]],
    originals: dict[str, dict[int, bytes]] | None = None,
    *,
    share: bool,
    approve_command: str,
) -> str:
    """The whole review page. ``share`` pages take no ``originals``: a ValueError otherwise."""
    if share and originals:
        raise ValueError("a page marked for sharing must not hold an original frame")
    sections = "".join(
        _video_section(v, picks[v.file], stills[v.file], (originals or {}).get(v.file), n)
        for n, v in enumerate(reviews.videos, start=1)
    )
    toc = "".join(
        f'<li><a href="#video-{n}"><span class="dot {esc(_worst(v).name.lower())}"></span>'
        f"{esc(v.release_name)}</a></li>"
        for n, v in enumerate(reviews.videos, start=1)
    )
    if share:
        banner = (
            '<div class="banner share" data-marking="share">For sharing: this page shows '
            "de-identified output frames only and holds no original frame.</div>"
        )
    else:
        banner = (
            '<div class="banner private" data-marking="private">CONTAINS ORIGINAL, '
            "IDENTIFIABLE FACES (behind \u201cshow original\u201d). Do not share, mail or "
            "archive this page with the release.</div>"
        )
    config = json.dumps({"approveCommand": approve_command}).replace("</", "<\\/")
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    what = "batch" if reviews.kind == "batch" else "video folder"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:;
 style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Release review: {esc(reviews.root.name)}</title>
<style>{CSS}</style></head>
<body data-marking="{"share" if share else "private"}">
{banner}
<header class="top">
  <h1>Release review <span class="muted">{esc(reviews.root.name)}</span></h1>
  <p class="muted">{len(reviews.videos)} video(s) from a {what}; page made {made} by
    medswap {esc(__version__)}. Nothing on this page loads from the network.</p>
  <label class="reviewer">Reviewer <input id="reviewer" type="text" autocomplete="name"
    placeholder="your name, as it goes into the signed manifest"></label>
  <p id="mode" class="muted"></p>
  <nav><ol class="toc">{toc}</ol></nav>
</header>
<main>{sections}</main>
<div id="lightbox" hidden><figure><img alt=""><figcaption></figcaption></figure>
  <p class="muted">Esc closes; arrow keys step through this video's frames.</p></div>
<script id="config" type="application/json">{config}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def _worst(video: VideoReview) -> Verdict:
    return max((s.verdict for s in video.summary), key=_severity, default=Verdict.NONE)


def picks_for(video: VideoReview, sample: int) -> list[int]:
    """Every flagged frame and an even sample of the rest, in frame order."""
    flagged = {i for i in video.flags if i < video.frames}
    return sorted(flagged | set(sample_frames(video.frames, flagged, sample)))


def approve_command(root: Path, key_hint: str | None) -> str:
    """The command the page shows for a decision downloaded from a page opened from disk."""
    key = f" --key {key_hint}" if key_hint else ""
    return f"medswap approve {root} DECISION.json{key}"
