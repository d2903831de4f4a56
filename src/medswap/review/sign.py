"""Signed release manifests: who approved which exact file, with which settings and figures.

A manifest is a JSON object signed with HMAC-SHA256 over its canonical form (sorted keys, no
spaces, ASCII) minus the ``signature`` field. The key is the one ``batch`` already keeps for
pseudonyms (``OUT.pseudonym-key`` beside the batch folder) or, for a single video's folder, a
release key beside it (``DIR.release-key``, created on first use, owner-only), or any key
file given with ``--key``. The MAC is domain-separated ("medswap-release-manifest") so a
signature can never be confused with a pseudonym made from the same key.

Anyone who can change the manifest without the key cannot make its signature match; anyone
who swaps the video cannot make its SHA-256 match. :func:`verify_manifest` checks both and
says which failed, in one line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from medswap import __version__
from medswap.batch import pseudonyms as ps
from medswap.errors import InputNotFoundError, ReleaseError, UsageError
from medswap.outputs import json_safe, sha256_file
from medswap.review.model import ReviewSet, VideoReview

FORMAT = "medswap-release-manifest/1"
DECISIONS = ("approved", "rejected")
_DOMAIN = b"medswap-release-manifest\0"
#: Longest note or reviewer name kept (a manifest is a record, not a document store).
MAX_TEXT = 2000


def default_key_file(root: Path, kind: str) -> Path:
    """The batch's pseudonym key for a batch folder; ``DIR.release-key`` beside a video folder."""
    root = Path(root).resolve()
    if kind == "batch":
        return ps.default_key_file(root)
    return root.with_name(root.name + ".release-key")


def load_key(key_file: str | Path, root: Path, create: bool) -> bytes:
    """Read the signing key; create it (0600) only when signing, never when verifying."""
    key_file = Path(key_file)
    if not create and not key_file.is_file():
        raise InputNotFoundError("no signing key here (pass --key FILE)", key_file)
    return ps.load_or_create_key(key_file, root)


def key_id(key: bytes) -> str:
    """A short public name of the key, so a manifest signed with another key says so."""
    return hmac.new(key, _DOMAIN + b"key-id", hashlib.sha256).hexdigest()[:12]


def canonical(manifest: dict) -> bytes:
    """The bytes the signature covers: everything but the signature, in one fixed form."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(
        json_safe(body), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode()


def signature(key: bytes, manifest: dict) -> str:
    """HMAC-SHA256 of the canonical manifest, hex."""
    return hmac.new(key, _DOMAIN + canonical(manifest), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class FrameRange:
    """A reviewer's decision on frames ``first``..``last`` (inclusive), with a note."""

    first: int
    last: int
    decision: str
    note: str = ""


@dataclass(frozen=True)
class Decision:
    """What the reviewer chose on the page (unsigned): the server or ``approve`` signs it."""

    file: str  # relative to the review root
    sha256: str  # of the file the page showed
    reviewer: str
    decision: str
    note: str = ""
    ranges: tuple[FrameRange, ...] = ()

    @classmethod
    def from_json(cls, data: object) -> Decision:
        """Validate a decision posted by the page or read from a downloaded file."""
        if not isinstance(data, dict):
            raise UsageError("a decision must be a JSON object")
        reviewer = str(data.get("reviewer", "")).strip()[:MAX_TEXT]
        if not reviewer:
            raise UsageError("a decision needs the reviewer's name")
        decision = data.get("decision")
        if decision not in DECISIONS:
            raise UsageError(f"decision must be approved or rejected, got {decision!r}")
        ranges = []
        for r in data.get("ranges") or []:
            try:
                first, last = int(r["first"]), int(r["last"])
            except (KeyError, TypeError, ValueError):
                raise UsageError("a frame range needs whole numbers first and last") from None
            if first < 0 or last < first or r.get("decision") not in DECISIONS:
                raise UsageError(f"bad frame range {first}-{last} ({r.get('decision')!r})")
            ranges.append(FrameRange(first, last, r["decision"], str(r.get("note", ""))[:MAX_TEXT]))
        return cls(
            file=str(data.get("file", "")),
            sha256=str(data.get("sha256", "")),
            reviewer=reviewer,
            decision=decision,
            note=str(data.get("note", ""))[:MAX_TEXT],
            ranges=tuple(ranges),
        )

    @property
    def releasable(self) -> bool:
        """Approved as a whole and in every range: one rejected range holds the file back."""
        return self.decision == "approved" and all(r.decision == "approved" for r in self.ranges)


def build_manifest(video: VideoReview, decision: Decision, reviewed_at: datetime) -> dict:
    """The unsigned manifest of one decision on one video (no original name in it)."""
    return json_safe(
        {
            "format": FORMAT,
            "file": Path(video.file).name,  # beside the manifest
            "release_name": video.release_name,
            "sha256": video.sha256,
            "frames": video.frames,
            "settings": video.settings,
            "audit": video.audit,
            "obscured": {
                "frames": video.totals.get("frames_obscured", 0),
                "reasons": {
                    k: v for k, v in (video.totals.get("obscured_reasons") or {}).items() if k
                },
            },
            "evaluation": video.evaluation,
            "decision": decision.decision,
            "releasable": decision.releasable,
            "note": decision.note,
            "ranges": [asdict(r) for r in decision.ranges],
            "reviewer": decision.reviewer,
            "reviewed_at": reviewed_at.astimezone(timezone.utc).isoformat(timespec="seconds"),
            "medswap_version": __version__,
        }
    )


def sign_decision(reviews: ReviewSet, decision: Decision, key: bytes) -> tuple[Path, dict]:
    """Check a decision against the file as it is now, and return its signed manifest.

    The SHA-256 the page showed must still be the file's: a video changed after the page was
    made is refused, because the reviewer did not see it.
    """
    match = [v for v in reviews.videos if v.file == decision.file]
    if not match:
        raise UsageError(f"no video {decision.file!r} in this review")
    video = match[0]
    now = sha256_file(reviews.root / video.file)
    if decision.sha256 != video.sha256 or now != video.sha256:
        raise ReleaseError(
            "the video changed after the review page was made; make the page again and review it",
            video.file,
        )
    manifest = build_manifest(video, decision, datetime.now(timezone.utc))
    manifest["key_id"] = key_id(key)
    manifest["signature"] = {"alg": "HMAC-SHA256", "value": signature(key, manifest)}
    return video.manifest_path(reviews.root), manifest


def read_manifest(path: Path) -> dict:
    """A manifest file's JSON, or a one-line refusal."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputNotFoundError("no such release manifest", path) from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise ReleaseError("not a medswap release manifest (unreadable JSON)", path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReleaseError("not a medswap release manifest", path)
    return data


def verify_manifest(path: Path, key: bytes) -> dict:
    """The manifest at ``path`` if its signature holds and its video is the one approved.

    Each refusal is one :class:`ReleaseError` line saying what is wrong: unsigned, signed with
    another key, changed after signing, rejected (as a whole or in a range), video missing or
    changed. Nothing here copies anything.
    """
    data = read_manifest(path)
    sig = data.get("signature")
    if not isinstance(sig, dict) or not sig.get("value"):
        raise ReleaseError("unsigned release manifest", path)
    if data.get("key_id") != key_id(key):
        raise ReleaseError(
            f"signed with another key (key id {data.get('key_id')}, this key {key_id(key)})",
            path,
        )
    if sig.get("alg") != "HMAC-SHA256" or not hmac.compare_digest(
        str(sig["value"]), signature(key, data)
    ):
        raise ReleaseError("signature does not match: the manifest was changed after signing", path)
    if data.get("decision") != "approved":
        raise ReleaseError(
            f"rejected by {data.get('reviewer')} at {data.get('reviewed_at')}"
            + (f": {data['note']}" if data.get("note") else ""),
            path,
        )
    held = [r for r in data.get("ranges", []) if r.get("decision") != "approved"]
    if held:
        r = held[0]
        raise ReleaseError(
            f"frames {r['first']}-{r['last']} rejected by {data.get('reviewer')}"
            + (f": {r['note']}" if r.get("note") else ""),
            path,
        )
    video = Path(path).parent / str(data.get("file", ""))
    if not video.is_file():
        raise ReleaseError(f"the approved video {video.name} is missing", path)
    digest = sha256_file(video)
    if digest != data.get("sha256"):
        raise ReleaseError(
            f"{video.name} is not the approved video (SHA-256 {digest[:12]}..., approved "
            f"{str(data.get('sha256'))[:12]}...): it changed after approval",
            path,
        )
    return data
