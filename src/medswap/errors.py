"""Typed errors, each with its own process exit code.

The CLI maps every :class:`MedswapError` to one line on stderr and its exit code, so a
pipeline calling ``medswap`` can tell a missing file from a corrupt one without parsing text.
Library code raises these and never exits or prints.
"""

from __future__ import annotations

from pathlib import Path


class MedswapError(Exception):
    """Base of every error medswap reports to a user. ``exit_code`` is stable API."""

    exit_code = 1

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class UsageError(MedswapError):
    """Arguments that do not make sense together (bad option values)."""

    exit_code = 2


class InputNotFoundError(MedswapError):
    """An input file or folder does not exist."""

    exit_code = 3


class NotAVideoError(MedswapError):
    """The file exists but is not a readable video (text, image, empty file)."""

    exit_code = 4


class CorruptVideoError(MedswapError):
    """The container opens but the stream cannot be decoded to the end (truncated, damaged)."""

    exit_code = 5


class EmptyVideoError(MedswapError):
    """The video has a stream but no decodable frame."""

    exit_code = 6


class UnsupportedVideoError(MedswapError):
    """A codec or layout medswap cannot decode or re-encode faithfully."""

    exit_code = 7


class OutputError(MedswapError):
    """The output cannot be written (missing folder, no permission, exists without --overwrite)."""

    exit_code = 8


class DonorError(MedswapError):
    """A donor image cannot be used (unreadable, or no face found in it)."""

    exit_code = 9


class ModelError(MedswapError):
    """A model file is missing or does not match its pinned SHA-256."""

    exit_code = 10


class AlignmentError(MedswapError):
    """Two videos or keypoint files that must align frame by frame do not."""

    exit_code = 11


class PrivacyError(MedswapError):
    """An audit found the original identity in an output (``--strict``)."""

    exit_code = 12


class ManifestError(MedswapError):
    """A batch manifest cannot be used at all (no valid rows, missing columns)."""

    exit_code = 13


class MeasureError(MedswapError):
    """A clinical measure cannot be computed from the signal given."""

    exit_code = 14


class ModelFileError(MedswapError):
    """A trained medswap model file is corrupt, foreign, or for another subject."""

    exit_code = 15


class BatchFailedError(MedswapError):
    """Some videos of a batch failed; the others are done and listed in the output manifest."""

    exit_code = 16


class KeypointFileError(MedswapError):
    """A keypoint file cannot be read back (not medswap's, damaged, or missing columns)."""

    exit_code = 17


class MissingExtraError(MedswapError):
    """A feature needs an optional extra that is not installed (the learned engine: torch)."""

    exit_code = 18


class ReleaseError(MedswapError):
    """A release manifest is unsigned, changed, rejected, or does not match its video."""

    exit_code = 19


class ReleaseGateError(MedswapError):
    """``deidentify``'s own audit still finds the patient after its fixes: nothing is published.

    ``audit`` carries the :class:`medswap.evaluate.privacy.AuditResult`; ``quarantine`` the
    folder the artefacts were kept in (``--quarantine``), else None.
    """

    exit_code = 20
    audit: object | None = None
    quarantine: str | None = None
