"""One configuration for a de-identification run: built once, checked once, recorded whole.

The command line (``deidentify`` and ``batch``), the Python API, ``compare`` and ``sweep`` all
build a :class:`DeidentifyConfig`; the pipeline reads it and the report records it. Before it
existed the same options were declared and defaulted in five places and batch could set only four
of them; now a new option is one field here, one flag in :mod:`medswap.cli.options`, and every
caller gets it.

Where the run's files go (output, report, quarantine folder, overwrite) is not configuration of
*how* a video is de-identified: those stay arguments of :func:`medswap.pipeline.deidentify`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from medswap.errors import UsageError
from medswap.outputs import sha256_file
from medswap.swap import obscure as obs
from medswap.swap.donors import Donor
from medswap.swap.engine import SwapSettings
from medswap.text import TEXT_METHODS, TEXT_MODES
from medswap.types import METHODS

#: Swap engines: the landmark-driven mesh warp, or a model trained with ``medswap train``.
ENGINES = ("mesh", "learned")
#: What happens to the sound track: a voice identifies, so it is dropped unless kept on purpose.
AUDIO_MODES = ("drop", "keep")


def _choice(value: str, choices: tuple[str, ...], what: str) -> None:
    """Refuse ``value`` unless it is one of ``choices``, naming them."""
    if value not in choices:
        raise UsageError(f"unknown {what} '{value}'; choose one of {', '.join(choices)}")


@dataclass(frozen=True)
class DeidentifyConfig:
    """How to de-identify a video: the method, the donor, the swap's settings, text and audit.

    Checked when made (and again on :func:`dataclasses.replace`), so a bad value is refused with
    a one-line :class:`~medswap.errors.UsageError` before any file is opened.
    """

    #: ``swap`` (default) or a baseline: ``blur``, ``pixelate``, ``mask``.
    method: str = "swap"
    #: ``mesh`` (default) or ``learned``, which needs ``model`` (a ``.medswap`` file).
    engine: str = "mesh"
    model: str | Path | None = None
    #: Donor image paths, folders of images or built-in names; empty: the default donor.
    donors: tuple[str | Path | Donor, ...] = ()
    #: Picks each face track's donor reproducibly when there are several.
    donor_seed: int = 0
    #: 0..1 toward the donor's resting face shape; None keeps ``swap_settings.shape``.
    shape: float | None = None
    #: Blur kernel or pixelate block size relative to the face (None: the method's default).
    strength: float | None = None
    #: The ``mask`` baseline's shape: ``ellipse``, ``box`` or ``eyes``.
    mask_shape: str = "ellipse"
    #: Keep hands in front of the face as they are (their keypoints are measured).
    occlusion: bool = True
    #: Every blending parameter of the swap (for sweeps and experiments).
    swap_settings: SwapSettings = field(default_factory=SwapSettings)
    audio: str = "drop"
    #: Text burned into the pixels: ``redact`` every line, ``phi`` lines only, or ``keep``.
    text: str = "redact"
    text_method: str = "box"
    #: Judge every output frame before it is written and gate the release on the audit.
    audit: bool = False
    #: dlib's stride in that audit (None: set by the video's length, see
    #: :func:`medswap.evaluate.stream.dlib_stride_for`); SFace judges every frame.
    audit_stride: int | None = None
    #: The lineup folder the audit identifies against (None: the packaged gallery).
    gallery: str | Path | None = None
    #: Stop after this many frames (previews and tests).
    max_frames: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "donors", tuple(self.donors or ()))
        _choice(self.method, METHODS, "method")
        if self.audio not in AUDIO_MODES:
            raise UsageError(f"--audio must be 'drop' or 'keep', got '{self.audio}'")
        _choice(self.mask_shape, obs.MASK_SHAPES, "mask shape")
        object.__setattr__(self, "strength", obs.check_strength(self.method, self.strength))
        if self.shape is not None and not 0.0 <= self.shape <= 1.0:
            raise UsageError(f"--shape must be between 0 and 1, got {self.shape}")
        _choice(self.engine, ENGINES, "engine")
        self._check_engine()
        if self.text not in TEXT_MODES:
            raise UsageError(f"--text must be one of {', '.join(TEXT_MODES)}, got '{self.text}'")
        if self.text_method not in TEXT_METHODS:
            raise UsageError(
                f"--text-method must be one of {', '.join(TEXT_METHODS)}, got '{self.text_method}'"
            )

    def _check_engine(self) -> None:
        if self.engine == "learned":
            if self.method != "swap":
                raise UsageError("--engine learned swaps faces; it does not combine with --method")
            if self.model is None:
                raise UsageError(
                    "--engine learned needs --model MODEL.medswap (from medswap train)"
                )
            if self.donors or self.shape:
                raise UsageError(
                    "--engine learned: the donor and shape are in the model; "
                    "drop --donor and --shape"
                )
        elif self.model is not None:
            raise UsageError("--model is used by --engine learned only")

    @property
    def swap(self) -> SwapSettings:
        """The swap's settings with ``shape`` applied: what the renderer is given."""
        if self.shape is None:
            return self.swap_settings
        return replace(self.swap_settings, shape=self.shape)

    @property
    def strength_used(self) -> float:
        """The baseline's strength: the one asked for or the method's default."""
        if self.strength is not None:
            return self.strength
        return obs.DEFAULT_STRENGTH.get(self.method, 0.0)

    def with_options(self, **options: Any) -> DeidentifyConfig:
        """A copy with ``options`` changed, checked again (the API's keyword arguments)."""
        return replace(self, **options) if options else self

    @property
    def keeps_hands(self) -> bool:
        """Hands are looked for and kept in front of the face (the swap only)."""
        return self.method == "swap" and self.occlusion

    def report_settings(self) -> dict:
        """The settings as the JSON report records them (names only, never paths)."""
        method = self.method
        return {
            "method": method,
            "engine": self.engine if method == "swap" else None,
            "model": Path(self.model).name if self.model is not None else None,
            "shape": self.swap.shape,
            "detail": self.swap.detail,
            "strength": self.strength_used,
            **({"mask_shape": self.mask_shape} if method == "mask" else {}),
            "occlusion": self.keeps_hands,
            "audio": self.audio,
            "donor_seed": self.donor_seed,
            "max_frames": self.max_frames,
            "text": self.text,
            "text_method": self.text_method,
        }

    def to_json(self) -> dict:
        """Every field, as the report records it: file names, never a path."""
        data: dict = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "donors":
                value = [d.name if isinstance(d, Donor) else Path(d).name for d in value]
            elif f.name == "swap_settings":
                value = asdict(value)
            elif isinstance(value, Path | str) and f.name in ("model", "gallery"):
                value = Path(value).name
            data[f.name] = value
        return data

    def fingerprint(self) -> str:
        """A digest of everything that changes the output video, for batch's resume check.

        Donor files are hashed by content, so a replaced donor image redoes the videos.
        """
        data = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "donors":
                value = [_donor_key(d) for d in value]
            elif f.name == "swap_settings":
                value = asdict(value)
            elif isinstance(value, Path):
                value = str(value)
            data[f.name] = value
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _donor_key(donor: str | Path | Donor) -> str:
    """A donor's identity for the fingerprint: its image's hash, or its name."""
    if isinstance(donor, Donor):
        return f"{donor.name}:{donor.fingerprint}"
    if Path(donor).is_file():
        return sha256_file(Path(donor))
    return str(donor)
