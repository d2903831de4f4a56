"""The ``medswap`` command line: parse, call one API function, map errors to exit codes.

Every expected failure is a :class:`~medswap.errors.MedswapError`; it is printed as one line
``medswap: error: <file>: <problem>`` with that error's exit code, never as a traceback. Anything
else is a bug: one ``medswap: internal error:`` line and exit code 70 (``-v`` adds the traceback).
Each subcommand lives in a small ``_cmd_*`` function that calls the public API.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence

from medswap import __version__
from medswap.errors import MedswapError, UsageError
from medswap.outputs import remove_open_partials

log = logging.getLogger("medswap")

#: Registered subcommands: name -> (add_arguments, run). Feature modules add theirs here.
Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


def _commands() -> dict[str, tuple[str, Command]]:
    from medswap import cli_commands

    return cli_commands.COMMANDS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2, no usage dump
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="medswap",
        description="De-identify medical examination videos by "
        "face swapping, and measure what is kept and what is hidden.",
    )
    parser.add_argument("--version", action="version", version=f"medswap {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--models-dir",
        help="folder with model files overriding the packaged ones (still SHA-256 checked)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (help_text, (add_arguments, _run)) in _commands().items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
    return parser


#: Exit code of an unexpected error inside medswap (BSD's EX_SOFTWARE), apart from bad input.
INTERNAL_ERROR_EXIT = 70


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, schedulers, Dask) unwinds the run like Ctrl-C does."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medswap`` console script; returns the process exit code."""
    verbose = False
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args = build_parser().parse_args(argv)
        verbose = bool(args.verbose)
        logging.basicConfig(
            level=logging.DEBUG
            if args.verbose
            else logging.WARNING
            if args.quiet
            else logging.INFO,
            format="medswap: %(message)s",
            stream=sys.stderr,
        )
        if args.models_dir:
            os.environ["MEDSWAP_MODELS_DIR"] = args.models_dir
        _, (_, run) = _commands()[args.command]
        return run(args)
    except MedswapError as exc:
        print(f"medswap: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        # Every output is still under its partial name until published; remove any whose
        # cleanup the interrupt skipped.
        remove_open_partials()
        print("medswap: interrupted; no partial output was kept", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except Exception as exc:  # a bug, not bad input: still one line, and a code of its own
        if verbose:
            traceback.print_exc()
        detail = str(exc).strip().splitlines()
        print(
            f"medswap: internal error: {type(exc).__name__}: {detail[0] if detail else ''}"
            " (run with -v for the traceback)",
            file=sys.stderr,
        )
        return INTERNAL_ERROR_EXIT


if __name__ == "__main__":
    sys.exit(main())
