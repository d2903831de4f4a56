"""The table of ``medswap`` subcommands. Each feature module contributes one entry."""

from __future__ import annotations

from medswap.evaluate import cli as _evaluate_cli

COMMANDS: dict = {}

COMMANDS["keypoints"] = (
    "extract whole-body keypoints (body, hands, face mesh, dlib 68) from a video",
    (_evaluate_cli.add_keypoints_args, _evaluate_cli.run_keypoints),
)
COMMANDS["evaluate"] = (
    "measure how far de-identification moved the keypoints of a video",
    (_evaluate_cli.add_evaluate_args, _evaluate_cli.run_evaluate),
)
COMMANDS["compare"] = (
    "de-identify videos every way, evaluate each, and write one table and report",
    (_evaluate_cli.add_compare_args, _evaluate_cli.run_compare),
)
