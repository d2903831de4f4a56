"""The table of ``medswap`` subcommands. Each feature module contributes one entry."""

from __future__ import annotations

from medswap.evaluate import audit_cli

COMMANDS: dict = {}

COMMANDS["audit"] = (
    "audit a de-identified video: re-identification, identification and a leak scan of every frame",
    (audit_cli.add_arguments, audit_cli.run),
)
