"""medswap: de-identify medical examination videos by face swapping, and prove it.

The public API mirrors the command line; see ``medswap --help``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
