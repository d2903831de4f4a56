"""The table of ``medswap`` subcommands. Each feature module contributes one entry."""

from __future__ import annotations

COMMANDS: dict = {}
