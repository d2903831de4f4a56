"""The table of ``medswap`` subcommands. Each feature module contributes one entry."""

from __future__ import annotations

from medswap.batch import cli as _batch_cli

COMMANDS: dict = {}
COMMANDS["batch"] = (
    "de-identify a whole dataset (folder or CSV manifest): pseudonyms, resume, Dask",
    (_batch_cli.add_arguments, _batch_cli.run),
)
