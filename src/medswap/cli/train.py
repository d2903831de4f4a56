"""``medswap train``: parse, call :func:`medswap.learned.train.train_model`, report.

torch is imported only after the arguments are parsed, so ``medswap --help`` and every other
subcommand work without the optional extra.
"""

from __future__ import annotations

import argparse
import sys

from medswap.cli.args import add_max_frames, positive, whole
from medswap.learned.data import SIZES
from medswap.progress import ProgressDisplay


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--subject", nargs="+", required=True, metavar="VIDEO", help="videos of the patient"
    )
    p.add_argument(
        "--donor",
        nargs="+",
        required=True,
        metavar="IMAGE|VIDEO",
        help="donor image(s) or built-in (average, astronaut, grace_hopper), or donor video(s)",
    )
    p.add_argument("-o", "--output", required=True, metavar="MODEL.medswap", help="model file")
    p.add_argument("--size", type=int, choices=SIZES, default=64, help="crop size (default 64)")
    p.add_argument("--steps", type=positive, default=1000, help="training steps (default 1000)")
    p.add_argument("--batch", type=positive, default=16, help="crops per identity per step")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--seed", type=whole(0), default=0)
    p.add_argument(
        "--donor-material",
        choices=("rendered", "direct"),
        default="rendered",
        help="for donor images: rendered (default: the mesh engine paints the donor in the "
        "patient's poses and expressions) or direct (the image alone)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive,
        default=250,
        metavar="N",
        help="steps between checkpoints",
    )
    add_max_frames(p, "frames per subject video")
    p.add_argument("--resume", action="store_true", help="go on from MODEL.medswap.ckpt")


def _train_progress(display: ProgressDisplay):
    """The shared progress display, with the two losses beside the step count."""

    def show(step: int, total: int, la: float, lb: float, elapsed: float) -> None:
        display.update(
            "train", step, total, unit="steps", extra=f"loss patient {la:.4f} donor {lb:.4f}"
        )

    return show


def run(args: argparse.Namespace) -> int:
    from medswap.learned import require_torch

    require_torch()
    from medswap.learned.train import TrainConfig, train_model

    config = TrainConfig(
        size=args.size,
        steps=args.steps,
        batch=args.batch,
        seed=args.seed,
        device=args.device,
        checkpoint_every=args.checkpoint_every,
        material=args.donor_material,
        max_frames=args.max_frames,
    )
    display = ProgressDisplay(not args.quiet)
    result = train_model(
        args.subject,
        args.donor,
        args.output,
        config,
        resume=args.resume,
        progress=_train_progress(display),
    )
    display.close()
    la, lb = result.final_loss
    print(
        f"medswap train: {result.output}: {result.steps} steps, {result.patient_crops} patient "
        f"and {result.donor_crops} donor crops, final loss {la:.4f} / {lb:.4f}, "
        f"{result.prepare_seconds:.0f}s preparing + {result.seconds:.0f}s training "
        f"({args.device}); loss curve {result.loss_png}",
        file=sys.stderr,
    )
    return 0
