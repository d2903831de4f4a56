"""What a batch processes: a folder scanned for videos, or a CSV manifest, validated row by row.

A dataset archive is messy: rows point at files that were moved, the same file is listed twice,
a path climbs out of the dataset with ``..``, a cell holds bytes that are not text, or the
subject column is missing. Each such row is reported with its row number and its problem, and
the other rows still run: one bad row must not hold up a release of a thousand videos. Only a
manifest with no usable row at all is an error (:class:`~medswap.errors.ManifestError`).

Conventions (documented in the README):

* A **folder** input is scanned recursively for files with a video suffix (hidden files and
  folders are skipped). The subject is the first folder level under the input folder
  (``INPUT/P017/visit1/tapping.mp4`` -> subject ``P017``); a video directly in the input
  folder is its own subject, named by its file stem. The task is the second folder level when
  there is one below the subject (``visit1`` above), otherwise ``video``. File names are never
  used as tasks, because they often hold patient names.
* A **CSV manifest** has a header row with ``path`` and ``subject_id`` (or ``subject``) and an
  optional ``task``. Paths are relative to the manifest's folder, or absolute; either way they
  must lie inside the input root (the manifest's folder unless ``input_root`` is given).
  Without a subject column, subjects are derived from the paths as for a folder input, and the
  report says so.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from medswap.errors import InputNotFoundError, ManifestError

#: File suffixes taken as videos when a folder is scanned.
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm", ".mpg", ".mpeg"})

PATH_COLUMNS = ("path", "file", "video")
SUBJECT_COLUMNS = ("subject_id", "subject", "participant_id")
TASK_COLUMN = "task"
DEFAULT_TASK = "video"

_TASK_CLEAN = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True)
class VideoItem:
    """One video to process: where it is, whose it is, and which examination it shows."""

    source: Path  # absolute, resolved
    rel_path: str  # relative to the input root, POSIX separators; the stable identity of a video
    subject: str
    task: str  # sanitised: letters and digits only (it goes into output file names)
    row: int  # manifest row number (1 = header) or 0 for a folder scan


@dataclass(frozen=True)
class RowProblem:
    """A manifest row (or the manifest as a whole, row 0) that cannot be used as given."""

    row: int
    path: str
    problem: str
    skipped: bool = True  # False for a warning that did not stop the row

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row else "manifest"
        return f"{where}: {self.path + ': ' if self.path else ''}{self.problem}"


@dataclass
class ManifestReport:
    """The usable videos of an input, and every problem found on the way."""

    root: Path
    items: list[VideoItem] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def skipped(self) -> list[RowProblem]:
        return [p for p in self.problems if p.skipped]


def clean_task(task: str) -> str:
    """A task label safe in a file name: letters and digits only (``tap-1`` -> ``tap1``)."""
    cleaned = _TASK_CLEAN.sub("", task.strip())
    return cleaned or DEFAULT_TASK


def _derived_subject_and_task(rel: Path) -> tuple[str, str]:
    parts = rel.parts
    if len(parts) == 1:
        return rel.stem, DEFAULT_TASK
    if len(parts) >= 3:
        return parts[0], clean_task(parts[1])
    return parts[0], DEFAULT_TASK


def _inside(path: Path, root: Path) -> Path | None:
    try:
        return path.relative_to(root)
    except ValueError:
        return None


def scan_folder(folder: str | Path) -> ManifestReport:
    """Every video under ``folder`` (recursive, sorted), with subject and task from its folders."""
    root = Path(folder).resolve()
    if not root.is_dir():
        raise InputNotFoundError("no such folder", folder)
    report = ManifestReport(root=root)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if not path.is_file() or path.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        subject, task = _derived_subject_and_task(rel)
        report.items.append(VideoItem(path.resolve(), rel.as_posix(), subject, task, 0))
    if not report.items:
        raise ManifestError(
            f"no video files found (looked for {', '.join(sorted(VIDEO_SUFFIXES))})", folder
        )
    return report


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


class _Columns(NamedTuple):
    """Where a manifest's header puts the path, the subject and the task (None: absent)."""

    path: int
    subject: int | None
    task: int | None


def _manifest_rows(manifest: Path) -> list[list[str]]:
    """The manifest's rows from its header on (leading blank rows dropped), as text."""
    # surrogateescape keeps undecodable bytes, so one bad row is reported, not the whole file.
    text = manifest.read_bytes().decode("utf-8-sig", errors="surrogateescape")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    while rows and not any(cell.strip() for cell in rows[0]):
        rows.pop(0)
    if not rows:
        raise ManifestError("manifest is empty (no header row)", manifest)
    return rows


def _columns(header: list[str], manifest: Path) -> _Columns:
    path_col = _find_column(header, PATH_COLUMNS)
    if path_col is None:
        raise ManifestError(
            f"no path column (expected one of {', '.join(PATH_COLUMNS)}; "
            f"found {', '.join(h.strip() for h in header) or 'nothing'})",
            manifest,
        )
    return _Columns(
        path_col, _find_column(header, SUBJECT_COLUMNS), _find_column(header, (TASK_COLUMN,))
    )


def read_manifest(manifest: str | Path, input_root: str | Path | None = None) -> ManifestReport:
    """Read and validate a CSV manifest; raise :class:`ManifestError` only if no row is usable."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise InputNotFoundError("no such manifest file", manifest)
    root = Path(input_root).resolve() if input_root else manifest.resolve().parent
    rows = _manifest_rows(manifest)
    header = rows[0]
    cols = _columns(header, manifest)
    report = ManifestReport(root=root)
    if cols.subject is None:
        report.problems.append(
            RowProblem(
                0,
                "",
                f"no subject column (expected one of {', '.join(SUBJECT_COLUMNS)}); "
                "subjects are taken from each path's first folder (or the file stem)",
                skipped=False,
            )
        )
    seen: dict[Path, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank line
        found = _row_item(number, row, len(header), cols, root, seen)
        if isinstance(found, RowProblem):
            report.problems.append(found)
        else:
            report.items.append(found)
    if not report.items:
        detail = "; ".join(str(p) for p in report.problems[:5])
        raise ManifestError(f"no usable rows ({detail})", manifest)
    return report


def _row_item(
    number: int,
    row: list[str],
    width: int,
    cols: _Columns,
    root: Path,
    seen: dict[Path, int],
) -> VideoItem | RowProblem:
    """One manifest row as a video to process, or the problem that stops it.

    ``seen`` maps each path already listed to its row, and gains this row's path once the
    path is known to lie inside ``root``: a later row listing it again is a duplicate.
    """
    raw_path = row[cols.path].strip() if cols.path < len(row) else ""
    shown = raw_path.encode("utf-8", "backslashreplace").decode() if raw_path else ""
    if any("\udc80" <= ch <= "\udcff" for ch in "".join(row)):
        return RowProblem(number, shown, "unreadable row (not UTF-8 text)")
    if len(row) != width:
        return RowProblem(number, shown, f"unreadable row ({len(row)} fields, header has {width})")
    if not raw_path:
        return RowProblem(number, "", "unreadable row (empty path)")
    given = Path(raw_path)
    path = (given if given.is_absolute() else root / given).resolve()
    rel = _inside(path, root)
    if rel is None or not rel.parts:
        return RowProblem(number, shown, f"path is outside the input root {root}")
    if path in seen:
        return RowProblem(number, shown, f"duplicate path (first listed on row {seen[path]})")
    seen[path] = number
    if not path.is_file():
        problem = "is a folder, not a video file" if path.is_dir() else "file not found"
        return RowProblem(number, shown, problem)
    if cols.subject is None:
        subject, task = _derived_subject_and_task(rel)
    else:
        subject = row[cols.subject].strip()
        task = DEFAULT_TASK
        if not subject:
            return RowProblem(number, shown, "empty subject_id")
    if cols.task is not None and row[cols.task].strip():
        task = clean_task(row[cols.task])
    return VideoItem(path, rel.as_posix(), subject, task, number)


def load_input(input_path: str | Path, input_root: str | Path | None = None) -> ManifestReport:
    """A folder or a ``.csv`` manifest, validated; see the module docstring for the rules."""
    input_path = Path(input_path)
    if input_path.is_dir():
        return scan_folder(input_path)
    if not input_path.exists():
        raise InputNotFoundError("no such folder or manifest", input_path)
    if input_path.suffix.lower() != ".csv":
        raise ManifestError("batch input must be a folder or a .csv manifest", input_path)
    return read_manifest(input_path, input_root)
