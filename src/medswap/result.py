"""What a de-identification run did: the output, its frame-by-frame record, totals, report."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from medswap import __version__, video
from medswap.models import DEIDENTIFY_MODELS, TEXT_MODELS, model_manifest
from medswap.types import NOT_MESH_REASONS, FrameOutcome


@dataclass
class DeidentifyResult:
    """What a run did: the output, its frame-by-frame record and totals."""

    input: str
    output: str
    method: str
    info: video.VideoInfo
    frames: list[FrameOutcome]
    totals: Totals
    settings: dict
    donors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    audit: object | None = None  # medswap.evaluate.privacy.AuditResult when audited
    text_audit: object | None = None  # medswap.text.audit.TextAuditResult when audited
    #: Where the run's time went, stage by stage (busy seconds), and the release gate's record.
    stages: dict = field(default_factory=dict)
    gate: dict | None = None
    #: per track with several donors: the donor chosen and every donor's distances (see
    #: :class:`DonorChooser`)
    donor_choice: list[dict] = field(default_factory=list)
    #: Donors a default run rendered with and dropped because the audit was not clean, in
    #: order, each with the audit's one-line reason (:data:`~medswap.swap.donors.FALLBACK_DONORS`)
    donor_retries: list[dict] = field(default_factory=list)
    #: The whole configuration of the run (:meth:`medswap.config.DeidentifyConfig.to_json`).
    config: dict = field(default_factory=dict)

    @property
    def face_found(self) -> bool:
        """A face was found by the face mesh (not only a possible face from the safety net)."""
        return self.totals.frames_with_mesh_face > 0

    def to_json(self, include_models: bool = True) -> dict:
        info = self.info
        return {
            "tool": "medswap",
            "version": __version__,
            # No input name or path: a file named after the patient must not reach the
            # report. The output is named by its file name only, not the path as typed.
            "input": {
                "width": info.width,
                "height": info.height,
                "fps": float(info.fps),
                "rotation": info.rotation,
                "codec": info.codec,
                "video_streams": info.video_streams,
            },
            "output": Path(self.output).name,
            "method": self.method,
            "settings": self.settings,
            "config": self.config,
            "donors": self.donors,
            "donor_choice": self.donor_choice,
            "donor_retries": self.donor_retries,
            "elapsed_s": round(self.elapsed_s, 3),
            "stages": self.stages,
            "totals": self.totals.to_json(),
            "release_gate": self.gate,
            "models": model_manifest(_models_used(self.method, self.settings))
            if include_models
            else {},
            "audit": self.audit.to_json() if self.audit is not None else None,
            "text_audit": self.text_audit.to_json() if self.text_audit is not None else None,
            "frames": [f.to_json() for f in self.frames],
        }


def _models_used(method: str, settings: dict) -> list[str]:
    """The models a run of ``method`` used: the text detector too unless text was kept."""
    text = settings.get("text", "keep")
    return [*DEIDENTIFY_MODELS[method], *(() if text == "keep" else TEXT_MODELS)]


@dataclass(frozen=True)
class TextTotals:
    """Burned-in text over the run: frames and regions redacted or kept, and why."""

    frames_redacted: int
    regions_redacted: int
    regions_kept: int
    tracks: int
    reasons: dict[str, int]


@dataclass(frozen=True)
class Totals:
    """What a run did, counted: frames and faces by what became of them, and why obscured.

    The report's ``totals`` object is :meth:`to_json` of this, with the same names.
    """

    frames: int
    frames_with_face: int
    #: Frames where the face mesh found a face (not only the safety net's possible face).
    frames_with_mesh_face: int
    frames_swapped: int
    frames_obscured: int
    frames_baseline: int
    frames_no_face: int
    faces_swapped: int
    faces_obscured: int
    faces_baseline: int
    tracks: int
    obscured_reasons: dict[str, int]
    text: TextTotals

    def to_json(self) -> dict:
        return asdict(self)


def totals_of(outcomes: list[FrameOutcome], reasons: Counter) -> Totals:
    """The run's totals from its frame-by-frame record and the reasons faces were obscured."""
    status = Counter(o.status for o in outcomes)
    faces = Counter(f.status.value for o in outcomes for f in o.faces)
    return Totals(
        frames=len(outcomes),
        frames_with_face=sum(1 for o in outcomes if o.faces),
        frames_with_mesh_face=sum(
            1 for o in outcomes if any(f.reason not in NOT_MESH_REASONS for f in o.faces)
        ),
        frames_swapped=status.get("swapped", 0),
        frames_obscured=status.get("obscured", 0),
        frames_baseline=status.get("baseline", 0),
        frames_no_face=status.get("no_face", 0),
        faces_swapped=faces.get("swapped", 0),
        faces_obscured=faces.get("obscured", 0),
        faces_baseline=faces.get("baseline", 0),
        tracks=len({f.track_id for o in outcomes for f in o.faces}),
        obscured_reasons=dict(reasons),
        text=text_totals(outcomes),
    )


def text_totals(outcomes: list[FrameOutcome]) -> TextTotals:
    """Burned-in text over the run: frames and regions redacted or kept, and why."""
    redacted = [t for o in outcomes for t in o.text if t.status == "redacted"]
    return TextTotals(
        frames_redacted=sum(1 for o in outcomes if any(t.status == "redacted" for t in o.text)),
        regions_redacted=len(redacted),
        regions_kept=sum(1 for o in outcomes for t in o.text if t.status == "kept"),
        tracks=len({t.track_id for o in outcomes for t in o.text}),
        reasons=dict(Counter(t.reason for t in redacted)),
    )
