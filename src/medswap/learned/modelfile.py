"""The ``.medswap`` model file: a zip with a JSON header and the network weights.

Layout (format ``medswap-learned-swap``, version 1)::

    header.json    what the model is: format and version, medswap and torch versions,
                   architecture, alignment template, subject fingerprint (mean dlib ResNet
                   descriptor of the person it was trained on), donor name and fingerprint,
                   training steps, seconds, device, seed and loss curve, weights' SHA-256
    weights.pt     torch.save of the encoder and the donor decoder (tensors only)
    train.pt       checkpoints only: patient decoder, optimiser and random states

A de-identification model holds nothing that can paint the patient's face back (no patient
decoder); the checkpoint does, and is patient data. The subject fingerprint is a biometric
template of the patient: it lets ``deidentify`` refuse a video of someone else, and it makes
the model file itself identifying; store it like the original video.

Reading validates everything before any weight is used and raises :class:`ModelFileError`
with one line saying what is wrong (not a zip, foreign zip, truncated, newer format, checksum,
weights that do not fit the header). ``torch.load`` runs with ``weights_only=True``, so a
crafted pickle inside the zip cannot execute code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from medswap import __version__
from medswap.errors import InputNotFoundError, ModelFileError

FORMAT = "medswap-learned-swap"
FORMAT_VERSION = 1
SUFFIX = ".medswap"
_REQUIRED = ("architecture", "template", "subject", "donor", "training", "weights_sha256")


@dataclass
class ModelFile:
    """A validated model file: header plus tensors (and training state for a checkpoint)."""

    path: Path
    header: dict
    weights: dict  # name -> tensor
    train_state: dict | None = None

    @property
    def subject_fingerprint(self):
        import numpy as np

        return np.asarray(self.header["subject"]["fingerprint"], dtype=np.float64)

    @property
    def donor_label(self) -> str:
        d = self.header["donor"]
        return f"{d['name']}:{d['fingerprint']}"


def _tensor_bytes(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def write_model_file(
    path: str | Path, header: dict, weights: dict, train_state: dict | None = None
) -> Path:
    """Write atomically (a reader never sees half a file); returns the path."""
    path = Path(path)
    blob = _tensor_bytes(weights)
    head = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "medswap_version": __version__,
        **header,
        "kind": "checkpoint" if train_state is not None else "model",
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=str(path.parent))
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("header.json", json.dumps(head, indent=1))
            zf.writestr("weights.pt", blob)
            if train_state is not None:
                zf.writestr("train.pt", _tensor_bytes(train_state))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _fail(path: Path, problem: str) -> ModelFileError:
    return ModelFileError(problem, path)


def read_header(path: str | Path) -> dict:
    """The validated header alone (no torch needed)."""
    path = Path(path)
    with _open_zip(path) as zf:
        return _header(zf, path)


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise InputNotFoundError("model file not found", path)
    if path.is_dir():
        raise _fail(path, "is a folder, not a medswap model file")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if not zipfile.is_zipfile(path):
        if magic == b"PK\x03\x04":
            raise _fail(path, "truncated or corrupt model file (its zip directory is missing)")
        if not magic:
            raise _fail(path, "empty file, not a medswap model file")
        raise _fail(path, "not a medswap model file (not a zip archive)")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _fail(path, f"truncated or corrupt model file ({exc})") from None


def _read(zf: zipfile.ZipFile, name: str, path: Path) -> bytes:
    try:
        return zf.read(name)
    except zipfile.BadZipFile as exc:
        raise _fail(path, f"corrupt model file ({name}: {exc})") from None
    except (OSError, EOFError, ValueError) as exc:
        raise _fail(path, f"truncated or corrupt model file ({name}: {exc})") from None


def _header(zf: zipfile.ZipFile, path: Path) -> dict:
    if "header.json" not in zf.namelist():
        raise _fail(path, "not a medswap model file (a zip without header.json)")
    try:
        head = json.loads(_read(zf, "header.json", path))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _fail(path, "not a medswap model file (header.json is not JSON)") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        fmt = head.get("format") if isinstance(head, dict) else None
        raise _fail(path, f"not a medswap model file (format {fmt!r}, expected {FORMAT!r})")
    version = head.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise _fail(path, f"invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise _fail(
            path,
            f"made by a newer medswap (format version {version}; this medswap "
            f"{__version__} reads up to {FORMAT_VERSION})",
        )
    missing = [k for k in _REQUIRED if k not in head]
    if missing:
        raise _fail(path, f"incomplete header (missing {', '.join(missing)})")
    fp = head["subject"].get("fingerprint") if isinstance(head["subject"], dict) else None
    if not isinstance(fp, list) or len(fp) != 128:
        raise _fail(path, "incomplete header (no 128-value subject fingerprint)")
    arch = head["architecture"]
    if not isinstance(arch, dict) or arch.get("size") not in (64, 96, 128):
        raise _fail(
            path, f"unsupported crop size {arch.get('size') if isinstance(arch, dict) else arch!r}"
        )
    if not isinstance(head["template"], list) or len(head["template"]) != 478:
        raise _fail(path, "incomplete header (alignment template is not 478 points)")
    return head


def read_model_file(path: str | Path, with_train_state: bool = False) -> ModelFile:
    """Read and validate a model (or checkpoint) file; :class:`ModelFileError` on any problem."""
    import torch

    path = Path(path)
    with _open_zip(path) as zf:
        head = _header(zf, path)
        names = zf.namelist()
        if "weights.pt" not in names:
            raise _fail(path, "incomplete model file (no weights.pt)")
        blob = _read(zf, "weights.pt", path)
        if hashlib.sha256(blob).hexdigest() != head["weights_sha256"]:
            raise _fail(path, "corrupt model file (weights do not match the header's SHA-256)")
        weights = _load_tensors(blob, path, "weights.pt")
        state = None
        if with_train_state:
            if "train.pt" not in names:
                raise _fail(path, "not a training checkpoint (no train.pt); cannot resume")
            state = _load_tensors(_read(zf, "train.pt", path), path, "train.pt")
    if not isinstance(weights, dict) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        raise _fail(path, "corrupt model file (weights.pt is not a table of tensors)")
    return ModelFile(path, head, weights, state)


def _load_tensors(blob: bytes, path: Path, name: str):
    import pickle

    import torch

    try:
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(path, f"corrupt model file ({name}: {first[:120]})") from None
