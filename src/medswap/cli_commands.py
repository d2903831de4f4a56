"""The table of ``medswap`` subcommands. Each feature module contributes one entry."""

from __future__ import annotations

from medswap.measures import cli as _measures_cli

COMMANDS: dict = {}

COMMANDS["measures"] = (
    "clinical measures (finger tapping, hand movements, tremor, blinks, mouth, facial motion) "
    "from a video or its keypoints",
    (_measures_cli.add_arguments, _measures_cli.run),
)
