"""The table of ``medswap`` subcommands, in the order ``medswap --help`` lists them.

An entry is ``name -> (help, (add_arguments, run))``; each subcommand is a module of this
package with ``add_arguments(p)`` and ``run(args) -> int`` (the exit code). A new subcommand is
one module and one line here.
"""

from __future__ import annotations

from types import ModuleType

from medswap.cli import (
    approve,
    audit,
    batch,
    compare,
    deidentify,
    demo,
    evaluate,
    keypoints,
    measures,
    release,
    review,
    train,
)

_HELP: dict[str, tuple[str, ModuleType]] = {
    "deidentify": (
        "De-identify a video: swap (or blur, pixelate, mask) every face.",
        deidentify,
    ),
    "demo": (
        "Build a short clip from packaged public-domain portraits and de-identify it.",
        demo,
    ),
    "measures": (
        "Clinical measures (finger tapping, hand movements, tremor, blinks, mouth, facial motion) "
        "from a video or its keypoints.",
        measures,
    ),
    "batch": (
        "De-identify a whole dataset (folder or CSV manifest): pseudonyms, resume, Dask.",
        batch,
    ),
    "keypoints": (
        "Extract whole-body keypoints (body, hands, face mesh, dlib 68) from a video.",
        keypoints,
    ),
    "evaluate": (
        "Measure how far de-identification moved a video's keypoints (vs the original).",
        evaluate,
    ),
    "compare": (
        "De-identify videos every way, evaluate each, and write the paper's table and a report.",
        compare,
    ),
    "audit": (
        "Audit a de-identified video: re-identification, identification, a leak scan of every "
        "frame.",
        audit,
    ),
    "train": (
        "Train a learned swap model (shared encoder, one decoder per identity) for one patient "
        "and one donor; needs the extra medswap[learned] (torch).",
        train,
    ),
    # -- release review (issue 24) --
    "review": (
        "Write the release review page of a video's or a batch's output (--serve to sign as you "
        "click).",
        review,
    ),
    "approve": (
        "Sign a decision downloaded from a review page opened from disk: a release manifest.",
        approve,
    ),
    "release": (
        "Verify signed release manifests and copy the approved videos into a release folder.",
        release,
    ),
}

COMMANDS: dict = {
    name: (help_text, (module.add_arguments, module.run))
    for name, (help_text, module) in _HELP.items()
}
