"""Keyed, deterministic pseudonyms: the same subject always gets the same name and donor.

A pseudonym is ``HMAC-SHA256(key, subject)``, cut to 10 hex digits. Without the key nobody
can test a guessed patient ID against a released pseudonym (a plain hash of ``P017`` could be
reversed by trying every ID); with the key, the data controller gets the same pseudonyms in
every run and every later release, so a follow-up visit joins its subject.

The key is 32 random bytes in a key file that is created on first use (mode 0600) and must
stay private. It lives *outside* the output folder (by default ``<OUTPUT_DIR>.pseudonym-key``
beside it), together with the mapping table (``<OUTPUT_DIR>.pseudonym-map.csv``) that links
original subjects and paths to pseudonyms and output files. The output folder itself holds no
original name and no key, so it can be shared as it is.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from medswap.errors import OutputError, UsageError

KEY_BYTES = 32
PSEUDONYM_HEX = 10  # 40 bits: collisions are checked for, and unlikely below ~100k subjects


def default_key_file(output_dir: Path) -> Path:
    """``OUT.pseudonym-key`` beside the output folder ``OUT``."""
    output_dir = Path(output_dir).resolve()
    return output_dir.with_name(output_dir.name + ".pseudonym-key")


def map_file(key_file: Path, output_dir: Path) -> Path:
    """The mapping table for one output folder, beside the key (one key may serve many releases)."""
    return Path(key_file).resolve().parent / (
        Path(output_dir).resolve().name + ".pseudonym-map.csv"
    )


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def load_or_create_key(key_file: str | Path, output_dir: str | Path) -> bytes:
    """Read the secret key, creating it (owner-only permissions) if the file does not exist."""
    key_file = Path(key_file)
    if _is_within(key_file, Path(output_dir)):
        raise UsageError(
            f"the pseudonym key file {key_file} must not be inside the output folder "
            f"{output_dir} (the output is meant to be shared; the key must stay private)"
        )
    if not key_file.exists():
        if not key_file.parent.is_dir():
            raise OutputError("folder for the pseudonym key does not exist", key_file)
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # created concurrently; read it below
        except OSError as exc:
            raise OutputError(
                f"cannot create the pseudonym key ({exc.strerror})", key_file
            ) from None
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(KEY_BYTES) + "\n")
    try:
        key = bytes.fromhex(key_file.read_text().strip())
    except (ValueError, UnicodeDecodeError):
        raise UsageError(f"{key_file}: not a medswap pseudonym key (expected hex digits)") from None
    if len(key) < 16:
        raise UsageError(f"{key_file}: pseudonym key too short ({len(key)} bytes, need 16+)")
    return key


def _mac(key: bytes, kind: str, value: str) -> bytes:
    return hmac.new(
        key, f"{kind}\0{value}".encode("utf-8", "surrogateescape"), hashlib.sha256
    ).digest()


def pseudonym(key: bytes, subject: str) -> str:
    """The subject's pseudonym: 10 lowercase hex digits, the same for every call with this key."""
    return _mac(key, "subject", subject).hex()[:PSEUDONYM_HEX]


def donor_seed(key: bytes, subject: str) -> int:
    """A 31-bit seed, fixed per subject, from which the subject's donor identity is chosen."""
    return int.from_bytes(_mac(key, "donor", subject)[:4], "big") & 0x7FFFFFFF


def source_id(key: bytes, rel_path: str) -> str:
    """A keyed identity of an input file (its path in the dataset) that reveals nothing of it."""
    return _mac(key, "path", rel_path).hex()[:16]


@dataclass(frozen=True)
class MapRow:
    """One line of the private mapping table."""

    subject_id: str
    source_path: str
    pseudonym: str
    task: str
    output: str  # relative to the output folder
    donor: str
    status: str
    error: str = ""


MAP_FIELDS = (
    "subject_id",
    "source_path",
    "pseudonym",
    "task",
    "output",
    "donor",
    "status",
    "error",
)


def write_map(path: Path, rows: list[MapRow]) -> None:
    """Write the mapping table atomically, keeping rows of earlier runs for other sources."""
    merged: dict[str, dict] = {}
    if path.exists():
        with path.open(newline="", encoding="utf-8", errors="surrogateescape") as fh:
            for old in csv.DictReader(fh):
                merged[old.get("source_path", "")] = old
    for row in rows:
        merged[row.source_path] = {f: getattr(row, f) for f in MAP_FIELDS}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        writer = csv.DictWriter(fh, fieldnames=MAP_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for key in sorted(merged):
            writer.writerow(merged[key])
    os.replace(tmp, path)
