"""The privacy table of the deidentify and compare reports: one row per audited output.

HTML only as a ``(title, html)`` pair; the report package places it (evaluate never imports
report).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from medswap.evaluate.privacy.recognisers import RECOGNISERS, THRESHOLDS
from medswap.evaluate.privacy.result import AuditResult, _pct
from medswap.faces.independent import SFACE_SAME_PERSON_COSINE


def privacy_section(
    results: Mapping[str, AuditResult] | Sequence[AuditResult],
) -> tuple[str, str]:
    """A ``(title, html)`` privacy table for the deidentify and compare reports.

    ``results`` maps a label (the method: swap, blur, ...) to its audit; a plain sequence is
    labelled by output file name. One row per output: re-identification rates, rank-1 against
    chance, leak frames, frames with no face in the output, distance to the donor.
    """
    items = (
        list(results.items())
        if isinstance(results, Mapping)
        else [(Path(r.deidentified).name, r) for r in results]
    )
    head = (
        "<tr><th>output</th><th>frames</th><th>re-id dlib</th><th>re-id SFace</th>"
        "<th>median dlib distance</th><th>median SFace distance</th>"
        "<th>rank-1 dlib / SFace (chance; without the donor)</th><th>leak frames</th>"
        "<th>no face in output</th><th>closer to donor (dlib)</th></tr>"
    )
    rows = []
    for label, r in items:
        esc = html.escape(str(label))
        if r.nothing_to_protect:
            rows.append(
                f"<tr><td>{esc}</td><td>{r.frames}</td>"
                "<td colspan='8'>no face in the original: nothing to protect</td></tr>"
            )
            continue
        v, ident = r.verification, r.identification
        rec = ident.get("recognisers", {})
        rank1 = " / ".join(_pct(rec.get(k, {}).get("rank1_rate")) for k in RECOGNISERS)
        rank1 += f" ({_pct(ident.get('chance_rank1'))} of {ident.get('n_identities', '-')})"
        if "chance_rank1_without_donors" in ident:
            rank1 += "; without the donor " + " / ".join(
                _pct(rec.get(k, {}).get("rank1_rate_without_donors")) for k in RECOGNISERS
            )
            rank1 += f" ({_pct(ident['chance_rank1_without_donors'])})"
        leaks = r.leak_frames
        leak_txt = f"<b>{len(leaks)}</b> (first {leaks[0]})" if leaks else "0"
        donor = (
            ", ".join(
                f"{html.escape(n)} {_pct(d.get('dlib', {}).get('closer_to_donor_rate'))}"
                for n, d in r.donors.items()
            )
            or "-"
        )
        cls = " class='fail'" if leaks else ""
        rows.append(
            f"<tr{cls}><td>{esc}</td><td>{r.frames}</td>"
            f"<td>{_pct(v['dlib']['reid_rate'])}</td><td>{_pct(v['sface']['reid_rate'])}</td>"
            f"<td>{v['dlib']['distance'].get('median', '-')}</td>"
            f"<td>{v['sface']['distance'].get('median', '-')}</td>"
            f"<td>{rank1}</td>"
            f"<td>{leak_txt}</td><td>{len(r.frames_no_face_in_output)}</td><td>{donor}</td></tr>"
        )
    note = (
        "<p>Re-identification: the share of checked frames whose output face dlib "
        f"(distance &lt; {THRESHOLDS['dlib']}) or SFace (cosine &gt; "
        f"{SFACE_SAME_PERSON_COSINE}) judges to be the patient's original face. A frame "
        "with no face in the output counts as hidden. Leak frames: any face found by YuNet "
        "or dlib HOG in any output frame that either recogniser matches to the patient.</p>"
    )
    body = f"<table class='privacy'>{head}{''.join(rows)}</table>{note}"
    return "Privacy: re-identification and leak audit", body
