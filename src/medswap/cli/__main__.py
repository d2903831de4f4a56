"""``python -m medswap.cli``: the same as the ``medswap`` console script."""

import sys

from medswap.cli.main import main

sys.exit(main())
