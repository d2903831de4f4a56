"""The learned swap engine: a deepfake autoencoder trained here, per patient and donor.

Needs the optional extra ``pip install 'medswap[learned]'`` (torch). Importing this package
does not import torch; :func:`require_torch` gives the one-line error when it is missing.
"""

from __future__ import annotations

from medswap.errors import MissingExtraError

TORCH_HINT = "the learned engine needs torch: pip install 'medswap[learned]'"


def require_torch() -> None:
    """Raise :class:`MissingExtraError` (its own exit code) when torch is not importable."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MissingExtraError(TORCH_HINT) from None
