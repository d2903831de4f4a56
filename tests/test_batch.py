"""Batch de-identification over a small real dataset, on a real Dask cluster over TCP.

The dataset is built once per module from 10-frame slices of three shared clips (three
subjects, four videos). Every run uses ``method="blur"``: the cheapest full pipeline run
(face mesh, detector, tracker, writer), so the machinery is tested end to end in seconds.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, shared_video

from medswap.batch import load_input, run_batch
from medswap.batch.jobs import STATE_DIR
from medswap.cli import main
from medswap.errors import ManifestError
from medswap.outputs import sha256_file
from medswap.video import count_frames, probe, read_frames, write_video

pytestmark = pytest.mark.shared

BIN = Path(sys.executable).parent
N_FRAMES = 10
#: relative path -> (shared clip, first frame). Names look like real archives: patient names.
LAYOUT = {
    "Smith_John/tapping/john_smith_left.mp4": ("speech_a.mp4", 0),
    "Smith_John/tapping/john_smith_right.mp4": ("speech_a.mp4", 30),
    "Doe_Jane/speech/jane_doe.mp4": ("speech_c.mp4", 0),
    "Roe_Rick/expression/rick.mp4": ("webcam_single.mp4", 5),
}
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("batch") / "archive"
    for rel, (clip, skip) in LAYOUT.items():
        src = shared_video(clip)
        info = probe(src)
        frames = [f.image for f in read_frames(src, info, max_frames=skip + N_FRAMES)][skip:]
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / rel, iter(frames), info.fps, info.display_size)
    return root


@pytest.fixture(scope="module")
def key_file(dataset) -> Path:
    return dataset.parent / "shared.pseudonym-key"


@pytest.fixture(scope="module")
def reference(dataset, key_file):
    """The default engine: a local Dask cluster of two worker processes."""
    return run_batch(dataset, dataset.parent / "ref", method="blur", workers=2, key_file=key_file)


def _hashes(output_dir: Path) -> dict[str, str]:
    return {
        p.relative_to(output_dir).as_posix(): sha256_file(p)
        for p in sorted(output_dir.glob("sub-*/*.mp4"))
    }


def test_reference_run_names_pseudonyms_and_keeps_originals_out(reference, dataset, key_file):
    out = reference.output_dir
    assert [o.status for o in reference.outcomes] == ["done"] * 4
    for o in reference.outcomes:
        assert o.frames == o.input_frames == N_FRAMES
        assert count_frames(out / o.output) == N_FRAMES
        assert sha256_file(out / o.output) == o.sha256
    # One subject, one pseudonym and one donor seed for all its videos.
    rows = list(csv.DictReader(reference.map_file.read_text().splitlines()))
    smith = {r["pseudonym"] for r in rows if r["subject_id"] == "Smith_John"}
    assert len(smith) == 1 and len({r["pseudonym"] for r in rows}) == 3
    assert len({r["donor"] for r in rows if r["subject_id"] == "Smith_John"}) == 1
    (pseudo,) = smith
    assert sorted(p.name for p in (out / f"sub-{pseudo}").iterdir()) == [
        f"{pseudo}_tapping_1.mp4",
        f"{pseudo}_tapping_2.mp4",
    ]
    # No original name anywhere in the output folder: not in file names, not in any text.
    originals = ("smith", "john", "doe", "jane", "roe", "rick", str(dataset).lower())
    for path in out.rglob("*"):
        assert not any(o in path.relative_to(out).as_posix().lower() for o in originals)
        if path.suffix in (".json", ".csv"):
            text = path.read_text().lower()
            assert not any(o in text for o in originals), path
    # The key and the mapping stay outside the output, the key readable by its owner only.
    assert reference.map_file.parent == key_file.parent != out
    assert (key_file.stat().st_mode & 0o777) == 0o600
    manifest = list(csv.DictReader((out / "manifest.csv").read_text().splitlines()))
    assert [(r["task"], r["frames"], r["status"]) for r in manifest].count(
        ("tapping", str(N_FRAMES), "done")
    ) == 2
    # Every video was audited (in the Dask worker) and only a clean one is published.
    for r in manifest:
        assert r["audit"].startswith("clean: 0 leak frames; rank-1 dlib") or (
            r["audit"] == "nothing to protect"
        ), r


@pytest.fixture(scope="module")
def tcp_cluster(tmp_path_factory):
    """A scheduler and two workers (with nannies, as deployed), on localhost over TCP."""
    folder = tmp_path_factory.mktemp("dask")
    sched_file = folder / "scheduler.json"
    procs = [
        subprocess.Popen(
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                ":0",
                "--scheduler-file",
                str(sched_file),
            ],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=folder,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert time.monotonic() < deadline, "dask scheduler did not start"
            time.sleep(0.2)
        for i in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        str(BIN / "dask"),
                        "worker",
                        "--scheduler-file",
                        str(sched_file),
                        "--nthreads",
                        "1",
                        "--name",
                        f"w{i}",
                        "--local-directory",
                        str(folder),
                    ],
                    env=ENV,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    cwd=folder,
                )
            )
        from distributed import Client

        with Client(scheduler_file=str(sched_file), timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
            address = client.scheduler.address
        assert address.startswith("tcp://127.0.0.1:")
        yield sched_file
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_tcp_cluster_matches_local_run_and_survives_a_killed_worker(
    tcp_cluster, dataset, key_file, reference
):
    from distributed import Client

    out = dataset.parent / "tcp"
    result: dict = {}
    job = threading.Thread(
        target=lambda: result.update(
            r=run_batch(dataset, out, method="blur", scheduler=str(tcp_cluster), key_file=key_file)
        )
    )
    killed = None
    with Client(scheduler_file=str(tcp_cluster)) as client:
        job.start()
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and job.is_alive():
            busy = [
                w
                for w, keys in client.processing().items()
                if any(str(k).startswith("medswap-") for k in keys)
            ]
            if len(busy) == 2:  # both workers hold a video; kill one of them mid-video
                pids = client.run(os.getpid, workers=[busy[0]])
                time.sleep(1.0)  # well inside the video (model start-up alone takes longer)
                killed = pids[busy[0]]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.1)
        job.join(timeout=300)
    assert killed is not None, "never saw both workers busy"
    r = result["r"]
    assert [o.status for o in r.outcomes] == ["done"] * 4
    # Nothing lost, nothing duplicated: one output and one record per video, no leftovers.
    assert sorted(_hashes(out)) == sorted(_hashes(reference.output_dir))
    records = sorted(p.stem for p in (out / STATE_DIR / "done").glob("*.json"))
    assert records == sorted(o.job_id for o in r.outcomes)
    assert not list((out / STATE_DIR).glob("work/*"))
    assert not list(out.rglob("*.medswap-partial"))
    # Both workers held a video at once (the kill above needs that); which worker *finished*
    # each is not asserted: the survivor may legitimately finish them all, as it did once in
    # a full CI-like run. The bits match the local run.
    assert _hashes(out) == _hashes(reference.output_dir)


def _write_manifest(dataset: Path, name: str, rows: list[str]) -> Path:
    path = dataset / name
    path.write_bytes(("\n".join(rows) + "\n").encode("utf-8", "surrogateescape"))
    return path


def test_killed_job_resumes_and_redoes_only_unfinished_videos(dataset, key_file, reference):
    manifest = _write_manifest(
        dataset,
        "all.csv",
        ["path,subject_id,task"]
        + [f"{rel},{rel.split('/')[0]},{rel.split('/')[1]}" for rel in LAYOUT],
    )
    out = dataset.parent / "killed"
    cmd = [
        sys.executable,
        "-m",
        "medswap.cli",
        "batch",
        str(manifest),
        "-o",
        str(out),
        "--method",
        "blur",
        "--workers",
        "1",
        "--key-file",
        str(key_file),
    ]
    proc = subprocess.Popen(
        cmd, env=ENV, start_new_session=True, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    done = out / STATE_DIR / "done"
    deadline = time.monotonic() + 180
    while not (done.is_dir() and any(done.glob("*.json"))):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the client and its whole local cluster
    proc.wait()
    first = {p.name: p.stat().st_mtime_ns for p in done.glob("*.json")}
    assert 1 <= len(first) < 4
    refused = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    assert refused.returncode == 8 and "pass --resume" in refused.stderr
    rerun = subprocess.run([*cmd, "--resume"], env=ENV, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"4 videos: {len(first)} already done, {4 - len(first)} to process" in rerun.stderr
    assert {
        p.name: p.stat().st_mtime_ns for p in done.glob("*.json") if p.name in first
    } == first  # finished videos were not redone
    assert len(list(done.glob("*.json"))) == 4
    assert _hashes(out) == _hashes(reference.output_dir)  # manifest input, same names, same bits
    summary = json.loads((out / "manifest.json").read_text())
    assert summary["counts"] == {"done": 4 - len(first), "skipped": len(first), "failed": 0}


def test_bad_manifest_rows_are_reported_and_valid_rows_still_process(dataset, tmp_path, capsys):
    (dataset / "notes.mp4").write_text("not a video\n")
    rel = "Doe_Jane/speech/jane_doe.mp4"
    manifest = _write_manifest(
        dataset,
        "messy.csv",
        [
            "path,subject_id,task",
            f"{rel},Doe_Jane,speech",
            "Doe_Jane/speech/missing.mp4,Doe_Jane,speech",
            f"./{rel},Doe_Jane,speech",
            "../outside.mp4,X,speech",
            "Roe_Rick/expression/rick.mp4,Roe_Rick",
            "Roe_Rick/expression/rick.mp4,Ro\udce9,speech",
            "Roe_Rick/expression/rick.mp4,,speech",
            "notes.mp4,Nobody,speech",
        ],
    )
    report = load_input(manifest)
    assert [str(p) for p in report.problems] == [
        "row 3: Doe_Jane/speech/missing.mp4: file not found",
        "row 4: ./Doe_Jane/speech/jane_doe.mp4: duplicate path (first listed on row 2)",
        f"row 5: ../outside.mp4: path is outside the input root {dataset}",
        "row 6: Roe_Rick/expression/rick.mp4: unreadable row (2 fields, header has 3)",
        "row 7: Roe_Rick/expression/rick.mp4: unreadable row (not UTF-8 text)",
        "row 8: Roe_Rick/expression/rick.mp4: empty subject_id",
    ]
    assert [i.rel_path for i in report.items] == [rel, "notes.mp4"]
    code = main(
        ["batch", str(manifest), "-o", str(tmp_path / "out"), "--method", "blur", "--workers", "0"]
    )
    err = capsys.readouterr().err
    assert code == 16  # BatchFailedError: some videos failed, the others are done
    assert "row 3: Doe_Jane/speech/missing.mp4: file not found" in err
    assert "1 of 2 videos failed" in err
    statuses = {
        r["task"] + r["status"]: r
        for r in csv.DictReader((tmp_path / "out" / "manifest.csv").read_text().splitlines())
    }
    assert statuses["speechdone"]["frames"] == str(N_FRAMES)
    assert "is not a video file" in statuses["speechfailed"]["error"]
    assert "notes" not in statuses["speechfailed"]["error"]  # the path stays out


def test_missing_subject_column_derives_subjects_from_folders(dataset, tmp_path):
    manifest = _write_manifest(
        dataset, "nosubject.csv", ["path,task"] + [f"{rel},x" for rel in LAYOUT]
    )
    report = load_input(manifest)
    assert str(report.problems[0]).startswith("manifest: no subject column")
    assert not report.problems[0].skipped
    assert [i.subject for i in report.items] == ["Smith_John", "Smith_John", "Doe_Jane", "Roe_Rick"]
    folder = load_input(dataset)
    assert {(i.subject, i.task) for i in folder.items if i.rel_path in LAYOUT} == {
        ("Smith_John", "tapping"),
        ("Doe_Jane", "speech"),
        ("Roe_Rick", "expression"),
    }
    # A video directly in the input folder is its own subject; one level down has no task.
    for rel in ("P9.mp4", "P7/a.MOV", ".hidden/P8.mp4", "P7/readme.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert [(i.rel_path, i.subject, i.task) for i in load_input(tmp_path).items] == [
        ("P7/a.MOV", "P7", "video"),
        ("P9.mp4", "P9", "video"),
    ]


def test_no_usable_rows_and_existing_output_are_refused(dataset, tmp_path, capsys):
    manifest = _write_manifest(dataset, "empty.csv", ["path,subject_id", "gone.mp4,P1"])
    with pytest.raises(ManifestError, match="no usable rows"):
        load_input(manifest)
    assert main(["batch", str(manifest), "-o", str(tmp_path / "o")]) == 13
    assert "row 2: gone.mp4: file not found" in capsys.readouterr().err
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("earlier work")
    assert main(["batch", str(dataset), "-o", str(out), "--method", "blur"]) == 8
    assert "output folder exists and is not empty" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "earlier work"
    assert main(["batch", str(dataset), "-o", str(dataset / "inside")]) == 2


def test_evaluate_adds_keypoint_and_privacy_numbers_per_video_and_for_the_dataset(tmp_path):
    """--evaluate: invariance and privacy of each video, aggregated into the output manifest."""
    import json as _json

    from media import portrait_clip

    from medswap.batch.runner import run_batch

    data = tmp_path / "in" / "P01"
    data.mkdir(parents=True)
    portrait_clip(data / "visit.mp4", n_frames=8)
    run_batch(
        tmp_path / "in",
        tmp_path / "out",
        method="blur",
        workers=0,
        evaluate=True,
        key_file=tmp_path / "key",
    )
    manifest = _json.loads((tmp_path / "out" / "manifest.json").read_text())
    text = _json.dumps(manifest)
    assert "nme_median.face-mesh" in text and "reid_rate.sface" in text
    assert "visit" not in text and "P01" not in text  # no original names in the output
