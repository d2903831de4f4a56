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

from medswap import __version__, native
from medswap.errors import MedswapError, UsageError
from medswap.outputs import remove_open_partials

log = logging.getLogger("medswap")

#: Registered subcommands: name -> (add_arguments, run). Feature modules add theirs here.
Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


def _commands() -> dict[str, tuple[str, Command]]:
    from medswap.cli import commands

    return commands.COMMANDS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2, no usage dump
        raise UsageError(message)


def _common_options(in_subcommand: bool) -> argparse.ArgumentParser:
    """-v, -q and --models-dir, declared once and accepted before or after the subcommand.

    The copy inside each subcommand has no defaults (``SUPPRESS``), so an option given before
    the subcommand is not reset by the subcommand's parser.
    """
    p = argparse.ArgumentParser(add_help=False)
    unset = {"default": argparse.SUPPRESS} if in_subcommand else {}
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log details, and let the native libraries (MediaPipe, TFLite) print",
        **unset,
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors", **unset)
    p.add_argument(
        "--models-dir",
        metavar="DIR",
        help="folder with model files overriding the packaged ones (still SHA-256 checked)",
        **unset,
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="medswap",
        description="De-identify medical examination videos by "
        "face swapping, and measure what is kept and what is hidden.",
        parents=[_common_options(in_subcommand=False)],
    )
    parser.add_argument("--version", action="version", version=f"medswap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _common_options(in_subcommand=True)
    for name, (help_text, (add_arguments, _run)) in _commands().items():
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        add_arguments(p)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parsed and checked arguments; every bad value is a :class:`UsageError` (exit 2)."""
    args = build_parser().parse_args(argv)
    if args.verbose and args.quiet:
        raise UsageError("-q and -v cannot be used together")
    if getattr(args, "strength", None) is not None:  # its range depends on --method
        from medswap.swap.obscure import check_strength

        check_strength(args.method, args.strength)
    return args


#: Exit code of an unexpected error inside medswap (BSD's EX_SOFTWARE), apart from bad input.
INTERNAL_ERROR_EXIT = 70


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, schedulers, Dask) unwinds the run like Ctrl-C does."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medswap`` console script; returns the process exit code."""
    # SIGTERM unwinds like Ctrl-C for this command only: a program that calls main() (a test,
    # a notebook) gets its own handler back afterwards.
    own_signals = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if own_signals else None
    try:
        try:
            args = parse_args(argv)
        except MedswapError as exc:
            print(f"medswap: error: {exc}", file=sys.stderr)
            return exc.exit_code
        native.set_verbose(args.verbose)
        with native.hidden_for_command():
            return _run(args)
    finally:
        if own_signals:
            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    """Run one parsed command; every failure becomes one line and its exit code."""
    verbose = bool(args.verbose)
    try:
        logging.basicConfig(
            # -q promises errors only: its notices (warnings) are left out too.
            level=logging.DEBUG if args.verbose else logging.ERROR if args.quiet else logging.INFO,
            format="medswap: %(message)s",
            stream=sys.stderr,  # after native.hidden_for_command: the real stderr
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
