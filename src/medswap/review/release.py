"""``medswap release``: copy approved videos into a release folder, and nothing else.

Every manifest is verified first (signature, decision, the video's SHA-256); if any is
refused, nothing is copied. Each approved video is then copied through a partial file whose
SHA-256 is checked again before it takes its name, so the released bytes are the approved
bytes. The signed manifest goes beside it, so whoever receives the release sees who approved
it and on which figures.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from medswap.errors import InputNotFoundError, OutputError, ReleaseError
from medswap.outputs import atomic_path, check_new_output, sha256_file
from medswap.review.model import MANIFEST_SUFFIX
from medswap.review.sign import load_key, read_manifest, verify_manifest

KEY_SUFFIXES = (".pseudonym-key", ".release-key")


@dataclass(frozen=True)
class Released:
    """One video placed in the release folder."""

    manifest: Path
    video: Path
    sha256: str


def find_key_file(manifest: Path) -> Path | None:
    """The key beside the review root: ``OUT.pseudonym-key`` (batch) or ``DIR.release-key``."""
    folder = Path(manifest).resolve().parent
    for candidate in (folder, folder.parent):
        for suffix in KEY_SUFFIXES:
            key = candidate.with_name(candidate.name + suffix)
            if key.is_file():
                return key
    return None


def collect_manifests(paths: Sequence[str | Path]) -> list[tuple[Path, bool]]:
    """Each manifest with whether it was named (True) or found in a named folder (False)."""
    found: list[tuple[Path, bool]] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += [(p, False) for p in sorted(path.rglob(f"*{MANIFEST_SUFFIX}"))]
        elif path.exists():
            found.append((path, True))
        else:
            raise InputNotFoundError("no such release manifest", path)
    if not found:
        raise InputNotFoundError(
            "no release manifest (*.release.json) in", ", ".join(map(str, paths))
        )
    return found


def _destination(to: Path, data: dict, manifest: Path) -> Path:
    name = PurePosixPath(str(data.get("release_name", "")))
    if not name.parts or name.is_absolute() or ".." in name.parts:
        raise ReleaseError(f"unsafe release name {str(name)!r}", manifest)
    return to.joinpath(*name.parts)


def _held_back(data: dict) -> bool:
    """Rejected as a whole or in a range: skipping it copies nothing, so no check is needed."""
    return data.get("decision") == "rejected" or data.get("releasable") is False


def plan_release(
    paths: Sequence[str | Path],
    to: Path,
    key_file: str | Path | None,
    *,
    notice: Callable[[str], None],
) -> tuple[list[tuple[Path, dict, Path]], list[ReleaseError]]:
    """Verify every manifest; return what to copy and every refusal.

    A rejected manifest found inside a named folder is a decision, not an error: it is skipped
    with a notice. Named explicitly, it is refused like a tampered one.
    """
    todo, refused = [], []
    for manifest, named in collect_manifests(paths):
        try:
            if not named and _held_back(read_manifest(manifest)):
                notice(f"{manifest}: skipped: the reviewer did not approve it")
                continue
            key_path = Path(key_file) if key_file else find_key_file(manifest)
            if key_path is None:
                raise ReleaseError(
                    "no signing key found beside the review folder (pass --key)", manifest
                )
            key = load_key(key_path, manifest.parent, create=False)
            data = verify_manifest(manifest, key)
            todo.append((manifest, data, _destination(to, data, manifest)))
        except ReleaseError as exc:
            refused.append(exc)
    return todo, refused


def copy_verified(manifest: Path, data: dict, dest: Path, overwrite: bool) -> Released:
    """Copy one approved video (and its manifest) into the release folder, checked twice."""
    video = manifest.parent / data["file"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    check_new_output(dest, overwrite=overwrite, inputs=[video], what="released video")
    manifest_dest = dest.with_name(dest.stem + MANIFEST_SUFFIX)
    check_new_output(manifest_dest, overwrite=overwrite, inputs=[manifest], what="manifest")
    with atomic_path(dest, "released video") as tmp:
        shutil.copyfile(video, tmp)
        if sha256_file(tmp) != data["sha256"]:
            raise ReleaseError("the copy does not match the approved SHA-256", dest)
    with atomic_path(manifest_dest, "manifest") as tmp:
        shutil.copyfile(manifest, tmp)
    return Released(manifest, dest, data["sha256"])


def release(
    paths: Sequence[str | Path],
    to: str | Path,
    *,
    key_file: str | Path | None = None,
    overwrite: bool = False,
    notice: Callable[[str], None] = lambda line: None,
    refusal: Callable[[ReleaseError], None] = lambda exc: None,
) -> list[Released]:
    """Verify ``paths`` (manifests or folders of them) and copy the approved videos to ``to``.

    Raises :class:`ReleaseError` if any manifest is refused (after reporting each one through
    ``refusal``); then nothing is copied.
    """
    to = Path(to)
    if to.exists() and not to.is_dir():
        raise OutputError("release folder is a file", to)
    if not to.parent.is_dir():
        raise OutputError("the folder that should hold the release folder does not exist", to)
    todo, refused = plan_release(paths, to, key_file, notice=notice)
    if refused:
        if len(refused) == 1:
            raise refused[0]
        for exc in refused:
            refusal(exc)
        raise ReleaseError(
            f"{len(refused)} of {len(refused) + len(todo)} manifests refused; nothing was released"
        )
    to.mkdir(exist_ok=True)
    return [copy_verified(m, data, dest, overwrite) for m, data, dest in todo]
