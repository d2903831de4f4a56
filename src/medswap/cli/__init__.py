"""The ``medswap`` command line: one module per subcommand, shared options declared once.

- :mod:`.main`: the parser, the common ``-v``/``-q``/``--models-dir``, SIGTERM, and the mapping
  of errors to exit codes.
- :mod:`.args`: option types and options shared by several subcommands (``--max-frames``).
- :mod:`.options`: the de-identification options shared by ``deidentify`` and ``batch``.
- :mod:`.commands`: the table of subcommands; each one is a module here with
  ``add_arguments(p)`` and ``run(args) -> int``.

This is the top layer: it imports the feature packages, and none of them imports it.
"""

from medswap.cli.main import INTERNAL_ERROR_EXIT, build_parser, main, parse_args

__all__ = ["INTERNAL_ERROR_EXIT", "build_parser", "main", "parse_args"]
