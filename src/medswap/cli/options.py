"""The options that say how a video is de-identified, declared once for ``deidentify`` and
``batch``, and the :class:`~medswap.config.DeidentifyConfig` built from them.

Before, batch declared four of them again and could set nothing else (no shape, eyes,
strength, engine); a new option is now one field in :mod:`medswap.config` and one flag here.
"""

from __future__ import annotations

import argparse

from medswap.cli.args import number, whole
from medswap.config import AUDIO_MODES, ENGINES, DeidentifyConfig
from medswap.swap.engine import SwapSettings
from medswap.swap.obscure import MASK_SHAPES
from medswap.text import TEXT_METHODS, TEXT_MODES
from medswap.types import METHODS


def add_donor_options(p: argparse.ArgumentParser, help: str) -> None:
    """``--donor`` (repeatable) with the command's own account of how donors are assigned."""
    p.add_argument("--donor", action="append", metavar="IMAGE", help=help)


def add_donor_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--donor-seed",
        type=whole(0),
        default=0,
        help="picks the donor of a track whose face cannot be measured (reproducibly)",
    )


def add_how_options(p: argparse.ArgumentParser) -> None:
    """Method, swap settings, hands, engine, text, audio and the audit's lineup."""
    p.add_argument(
        "--method",
        choices=METHODS,
        default="swap",
        help="swap (default) or a traditional baseline on the same face regions",
    )
    p.add_argument(
        "--audio",
        choices=AUDIO_MODES,
        default="drop",
        help="drop (default: a voice identifies) or keep unchanged and in sync",
    )
    _add_swap_options(p)
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="mesh",
        help="mesh (default: landmark-driven warp) or learned (a model from medswap train)",
    )
    p.add_argument(
        "--model", metavar="MODEL.medswap", help="the trained model for --engine learned"
    )
    p.add_argument(
        "--text",
        choices=TEXT_MODES,
        default="redact",
        help="text burned into the video (date stamps, title cards): redact every line "
        "(default), keep it, or phi: redact only lines that read as a date, time, number of 4+ "
        "digits or name (README: what it can miss)",
    )
    p.add_argument(
        "--text-method",
        choices=TEXT_METHODS,
        default="box",
        help="how text is redacted: a solid box (default) or a strong blur",
    )
    p.add_argument(
        "--gallery",
        metavar="DIR",
        help="the audit's lineup: a folder of person folders (default: built-in donors + "
        "scikit-image's LFW subset)",
    )


def _add_swap_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--shape",
        type=number(0, 1),
        default=None,
        metavar="BLEND",
        help="resting face shape, outline and jaw included: 0 the patient's .. 1 the donor's "
        "(default 1; the patient's expression and motion are kept at every value)",
    )
    p.add_argument(
        "--strength",
        type=number(),
        default=None,
        help="baseline strength relative to face size (blur: kernel / face width, 0.1..4; "
        "pixelate: blocks across the face, 2..32)",
    )
    p.add_argument(
        "--mask-shape",
        choices=MASK_SHAPES,
        default="ellipse",
        help="shape of the mask baseline: the face ellipse (default), its box, or an eye bar",
    )
    p.add_argument(
        "--detail",
        type=number(0, 3),
        default=0.0,
        metavar="STRENGTH",
        help="experimental: the patient's expression shading (forehead lines, folds) on the "
        "donor's skin as a ratio image; 0 (default) off, 1 as measured (README 'Expression "
        "detail')",
    )
    p.add_argument(
        "--eyes",
        choices=("none", "gaze", "iris", "opening"),
        default="none",
        help="the patient's eyes: none of them (default: the donor's eyes, opened and shut by "
        "the patient's eyelids), gaze (the donor's eyes turned where the patient looks), or "
        "the patient's own pixels: iris, or the whole opening. Each step shows more of the "
        "patient to a face recogniser (README)",
    )
    p.add_argument(
        "--no-occlusion",
        action="store_true",
        help="do not look for hands in front of the face (faster)",
    )


def config_from_args(args: argparse.Namespace) -> DeidentifyConfig:
    """The run's configuration from parsed options (checked once more by the config itself)."""
    return DeidentifyConfig(
        method=args.method,
        engine=args.engine,
        model=args.model,
        donors=tuple(args.donor or ()),
        donor_seed=getattr(args, "donor_seed", 0),
        shape=args.shape,
        strength=args.strength,
        mask_shape=args.mask_shape,
        occlusion=not args.no_occlusion,
        swap_settings=SwapSettings(keep_eyes=args.eyes, detail=args.detail),
        audio=args.audio,
        text=args.text,
        text_method=args.text_method,
        audit=not args.no_audit,
        gallery=args.gallery,
        max_frames=getattr(args, "max_frames", None),
    )
