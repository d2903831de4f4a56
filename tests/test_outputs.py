"""Outputs: nothing the user gave is replaced, and no failure leaves a file that looks complete."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from media import portrait_clip

from medswap.errors import OutputError
from medswap.outputs import (
    OPEN_PARTIALS,
    atomic_path,
    check_new_output,
    json_safe,
    publish,
    sha256_file,
    stage_text,
    write_atomic,
    write_json_atomic,
    write_json_durable,
)


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medswap.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        **kw,
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return portrait_clip(tmp_path_factory.mktemp("clip") / "patient.mp4", n_frames=8)


# -- the helper itself ---------------------------------------------------------------------


def test_check_new_output_refuses_inputs_other_outputs_and_existing_files(tmp_path):
    given = tmp_path / "given.mp4"
    given.write_bytes(b"patient video")
    other = tmp_path / "out.mp4"
    cases = [
        ({"inputs": [given]}, given, "report would overwrite the input"),
        ({"others": [other]}, other, "report is the same file as another output of this run"),
        ({}, given, "report exists (pass --overwrite to replace it)"),
        ({}, tmp_path / "missing" / "r.json", "report folder does not exist"),
        ({}, tmp_path, "report path is a folder"),
    ]
    for kw, path, message in cases:
        with pytest.raises(OutputError) as err:
            check_new_output(path, overwrite=False, what="report", **kw)
        assert message in str(err.value), (path, str(err.value))
    with pytest.raises(OutputError, match="would overwrite the input"):
        check_new_output(given, overwrite=True, inputs=[tmp_path / "." / "given.mp4"])
    assert given.read_bytes() == b"patient video"


def test_atomic_path_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "metrics.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert not target.exists() and _leftovers(tmp_path) == [] and not OPEN_PARTIALS


def test_publish_is_all_or_none(tmp_path):
    video_tmp = stage_text(tmp_path / "out.mp4", "video")
    report_tmp = stage_text(tmp_path / "report.json", "report")
    report_tmp.unlink()  # the second rename fails: the first file must not stay behind
    with pytest.raises(OutputError, match="cannot write the output"):
        publish([(video_tmp, tmp_path / "out.mp4"), (report_tmp, tmp_path / "report.json")])
    assert list(tmp_path.iterdir()) == [] and not OPEN_PARTIALS


# -- deidentify --report (issue #20, item 3) --------------------------------------------------


def test_report_never_replaces_the_input_the_output_or_an_existing_report(tmp_path, clip):
    src = tmp_path / "patient.mp4"
    src.write_bytes(clip.read_bytes())
    original = src.read_bytes()
    earlier = tmp_path / "earlier.json"
    earlier.write_text("{}")
    out = tmp_path / "out.mp4"
    cases = [
        (["--report", str(src)], "patient.mp4: report would overwrite the input"),
        (["--report", str(out)], "out.mp4: report is the same file as another output"),
        (["--report", str(earlier)], "earlier.json: report exists (pass --overwrite"),
    ]
    for extra, message in cases:
        proc = _cli("deidentify", str(src), "-o", str(out), "--no-audit", *extra)
        assert proc.returncode == 8, proc.stderr
        assert message in proc.stderr.strip().splitlines()[-1], proc.stderr
        assert not out.exists()
    assert src.read_bytes() == original and earlier.read_text() == "{}"
    assert _leftovers(tmp_path) == []


def test_report_in_a_read_only_folder_is_refused_before_any_work(tmp_path, clip):
    if os.geteuid() == 0:
        locked = Path("/proc/medswap-report.json")  # root ignores permissions; /proc does not
    else:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
        locked = folder / "report.json"
    out = tmp_path / "out.mp4"
    proc = _cli("deidentify", str(clip), "-o", str(out), "--no-audit", "--report", str(locked))
    assert proc.returncode == 8, proc.stderr
    assert "report folder is not writable" in proc.stderr
    assert not out.exists() and _leftovers(tmp_path) == []


def test_a_disk_that_fills_up_exits_8_and_leaves_nothing(tmp_path, clip):
    """A file-size limit stands in for a full disk: the write fails part-way the same way."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (4_000, 4_000))

    out = tmp_path / "out.mp4"
    proc = _cli("deidentify", str(clip), "-o", str(out), "--no-audit", preexec_fn=limit)
    assert proc.returncode == 8, proc.stderr
    assert "out.mp4" in proc.stderr and "internal error" not in proc.stderr
    assert not out.exists() and _leftovers(tmp_path) == []


# -- interrupts (issue #20, item 4) -------------------------------------------------------


def _interrupt_when(
    args: list[str], ready: str, sig: int, folder: Path
) -> subprocess.CompletedProcess:
    """Run the CLI with ``-v``, send ``sig`` once a stderr line contains ``ready``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "medswap.cli", "-v", *args],
        # A suite started in the background (nohup, `&`) ignores SIGINT, and a child inherits
        # that: Python then installs no KeyboardInterrupt handler and the run finished (exit 0).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    seen: list[str] = []
    hit = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            seen.append(line)
            if ready in line:
                hit.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert hit.wait(300), "".join(seen)
    proc.send_signal(sig)
    code = proc.wait(120)
    reader.join(10)
    return subprocess.CompletedProcess(args, code, "", "".join(seen))


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupt_during_the_audit_publishes_nothing(tmp_path, sig, code):
    src = portrait_clip(tmp_path / "patient.mp4", n_frames=60)
    out, report = tmp_path / "out.mp4", tmp_path / "out.json"
    proc = _interrupt_when(
        ["deidentify", str(src), "-o", str(out), "--report", str(report)],
        "first frame de-identified",  # the audit judges every frame as it is rendered
        sig,
        tmp_path,
    )
    assert proc.returncode == code, proc.stderr
    assert "interrupted; no partial output was kept" in proc.stderr
    assert not out.exists() and not report.exists()
    assert _leftovers(tmp_path) == []


def test_sigterm_while_encoding_leaves_no_partial_file(tmp_path):
    src = portrait_clip(tmp_path / "patient.mp4", n_frames=150)
    out = tmp_path / "out.mp4"
    start = time.monotonic()
    proc = _interrupt_when(
        ["deidentify", str(src), "-o", str(out), "--no-audit", "--no-occlusion"],
        "first frame de-identified",
        signal.SIGTERM,
        tmp_path,
    )
    assert proc.returncode == 143, proc.stderr
    assert time.monotonic() - start < 300
    assert not out.exists() and _leftovers(tmp_path) == []


def test_report_is_written_with_the_video(tmp_path, clip):
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    proc = _cli("deidentify", str(clip), "-o", str(out), "--no-audit", "--report", str(report))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(report.read_text())["output"] == "out.mp4"
    assert _leftovers(tmp_path) == []


# -- the shared file helpers (issue 21: one module for atomic output, JSON, hashing) --------------


def test_write_atomic_writes_text_and_bytes_and_leaves_no_partial(tmp_path):
    write_atomic(tmp_path / "a.txt", "héllo\n")
    write_atomic(tmp_path / "b.bin", b"\x00\xff")
    assert (tmp_path / "a.txt").read_text() == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]


def test_json_helpers_write_strict_json(tmp_path):
    payload = {"nan": float("nan"), "inf": float("-inf"), "arr": np.array([1.5, np.nan]), 3: 1}
    assert json_safe(payload) == {"nan": None, "inf": None, "arr": [1.5, None], "3": 1}
    write_json_atomic(tmp_path / "r.json", payload)
    assert json.loads((tmp_path / "r.json").read_text())["arr"] == [1.5, None]
    write_json_durable(tmp_path / "deep" / "rec.json", {"b": 1, "a": 2})
    assert (tmp_path / "deep" / "rec.json").read_text() == '{\n "a": 2,\n "b": 1\n}'
    assert _leftovers(tmp_path / "deep") == []


def test_sha256_file_matches_hashlib_across_chunks(tmp_path):
    data = os.urandom(3 * 1024 + 17)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f", chunk=1024) == hashlib.sha256(data).hexdigest()
