"""The release gate: a face left as the patient's is caught before it is written.

The swap never leaves a face unswapped on its own, so the error path is reached with a swapper
that does (a fake, standing in for any defect of the renderer): in frames 4-6 it leaves the
patient's face as it was. Everything else is real: the models, the in-stream audit, the clip.
"""

from __future__ import annotations

import json

import pytest
from conftest import shared_video

import medswap.gate
import medswap.pipeline
from medswap.cli import main
from medswap.errors import ReleaseGateError
from medswap.evaluate.privacy import audit
from medswap.pipeline import deidentify
from medswap.swap.donors import ENOUGH_MARGIN, FALLBACK_DONORS
from medswap.swap.engine import MeshSwapper

pytestmark = pytest.mark.shared

N = 12
LEFT_AS_IS = range(4, 7)  # frames in which the renderer leaves the face unswapped


class LeavesFramesAsIs(MeshSwapper):
    """A real swapper that does nothing in the frames of ``LEFT_AS_IS`` (one face a frame)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    def swap(self, frame, track_id, landmarks, donor, hands=None):
        i, self.calls = self.calls, self.calls + 1
        if i in LEFT_AS_IS:
            return (0, 0, 1, 1)
        return super().swap(frame, track_id, landmarks, donor, hands)


class FailsWithTheFirstDonor(LeavesFramesAsIs):
    """A real swapper that leaves the frames of ``LEFT_AS_IS`` as they are only when it draws
    the audited run's first donor (a defect that one donor's rendering has and the next one's
    not)."""

    def swap(self, frame, track_id, landmarks, donor, hands=None):
        if donor.name == FALLBACK_DONORS[0]:
            return super().swap(frame, track_id, landmarks, donor, hands)
        return MeshSwapper.swap(self, frame, track_id, landmarks, donor, hands)


class NeverSwaps(MeshSwapper):
    def swap(self, frame, track_id, landmarks, donor, hands=None):
        return (0, 0, 1, 1)


def test_unswapped_frames_are_caught_and_fixed_before_release(tmp_path, monkeypatch):
    src = shared_video("speech_a.mp4")
    monkeypatch.setattr(medswap.pipeline, "MeshSwapper", LeavesFramesAsIs)
    out = tmp_path / "out.mp4"
    result = deidentify(src, out, audit=True, max_frames=N, report=tmp_path / "out.json")
    gate = result.gate
    assert gate["faces_flagged"] >= len(LEFT_AS_IS), gate
    fixed = {f.frame_index for f in result.frames for face in f.faces if "gate" in face.reason}
    obscured = {f.frame_index for f in result.frames for face in f.faces if "audit" in face.reason}
    assert set(LEFT_AS_IS) <= fixed | obscured, (fixed, obscured)
    assert result.audit.clean and result.audit.frames == N
    # The published file passes the after-the-fact audit of every frame, both recognisers.
    after = audit(src, out, max_frames=N)
    assert after.leak_frames == [], after.summary()
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["release_gate"]["faces_flagged"] == gate["faces_flagged"]
    assert report["audit"]["lineup"]["passed"] is True
    assert set(report["stages"]["busy_s"]) >= {"render", "audit and gate", "encode"}
    audit_stages = report["stages"]["audit"]
    assert audit_stages["dlib_stride"] == 2 and audit_stages["find_busy_s"] > 0, audit_stages


def test_a_run_that_cannot_get_clean_publishes_nothing_and_exits_20(tmp_path, monkeypatch, capsys):
    src = shared_video("speech_a.mp4")
    monkeypatch.setattr(medswap.pipeline, "MeshSwapper", LeavesFramesAsIs)
    monkeypatch.setattr(medswap.gate, "MeshSwapper", NeverSwaps)  # re-rendering fails too
    monkeypatch.setattr(medswap.gate.obs, "obscure", lambda image, box: None)  # and obscuring
    out, report = tmp_path / "out.mp4", tmp_path / "out.json"
    with pytest.raises(ReleaseGateError) as info:
        deidentify(src, out, audit=True, max_frames=N, report=report)
    assert info.value.exit_code == 20
    assert set(info.value.audit.leak_frames) == set(LEFT_AS_IS)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing, not even partials

    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    args = ["-q", "deidentify", str(src), "-o", str(out), "--max-frames", str(N)]
    code = main([*args, "--report", str(report), "--quarantine", str(quarantine)])
    assert code == 20
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "release refused" in err and "frame 4" in err, err
    assert not out.exists() and not report.exists()
    kept = sorted(p.name for p in quarantine.iterdir())
    assert kept == ["out.quarantined.json", "out.quarantined.mp4"]
    record = json.loads((quarantine / "out.quarantined.json").read_text())
    assert record["audit"]["clean"] is False


def test_a_run_the_default_donor_cannot_clear_is_rendered_again_behind_the_next(
    tmp_path, monkeypatch
):
    src = shared_video("speech_a.mp4")
    monkeypatch.setattr(medswap.pipeline, "MeshSwapper", FailsWithTheFirstDonor)
    monkeypatch.setattr(medswap.gate, "MeshSwapper", NeverSwaps)  # the gate cannot fix it
    monkeypatch.setattr(medswap.gate.obs, "obscure", lambda image, box: None)
    out, report = tmp_path / "out.mp4", tmp_path / "out.json"
    result = deidentify(src, out, audit=True, max_frames=N, report=report)
    nxt = FALLBACK_DONORS[1]
    assert result.audit.clean and result.audit.frames == N
    assert [r["donor"] for r in result.donor_retries] == [FALLBACK_DONORS[0]]
    assert "frame 4" in result.donor_retries[0]["audit"], result.donor_retries
    assert [d.split(":")[0] for d in result.donors] == [nxt]
    drawn = {face.donor for f in result.frames for face in f.faces}
    assert drawn == {nxt}, drawn
    assert audit(src, out, max_frames=N).leak_frames == []
    record = json.loads(report.read_text())
    assert record["donor_retries"] == result.donor_retries
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "out.mp4"]  # no partial
    # A donor the user chose is not replaced behind their back: the run is refused.
    with pytest.raises(ReleaseGateError):
        given = (FALLBACK_DONORS[0],)
        deidentify(src, tmp_path / "given.mp4", audit=True, max_frames=N, donors=given)
    assert not (tmp_path / "given.mp4").exists()


def test_a_small_face_near_the_patient_is_judged_on_every_frame_and_on_the_file(tmp_path):
    """signer_small_face (a 40 px face) behind astronaut reads close to the patient to dlib.

    Before this, the gate passed every frame and published, and ``medswap audit --stride 1``
    of the file found 22 leak frames: the encoded file reads a small face closer to the
    patient than the frame the gate judged. Now the gate judges such a track on every frame
    (23 faces re-rendered), and because it read faces near the patient it audits the file
    itself before release: 3 frames still show the patient there, so the run is refused."""
    src = shared_video("signer_small_face.mp4")
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    with pytest.raises(ReleaseGateError) as info:
        deidentify(src, out, audit=True, donors=("astronaut",), report=report)
    assert info.value.exit_code == 20 and "show the original identity" in str(info.value)
    assert info.value.audit.frames == 41 and info.value.audit.leak_frames, info.value.audit
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing, not even partials


def test_a_patient_near_the_first_default_donor_is_rendered_behind_the_next(tmp_path):
    """The same patient without ``--donor``: the audited run starts behind astronaut, measures
    her against the patient's first faces, finds her nearer than the run's margin and starts
    again behind the next donor, which is far enough; that run is clean and published."""
    src = shared_video("signer_small_face.mp4")
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    result = deidentify(src, out, audit=True, report=report)
    first, nxt = FALLBACK_DONORS
    assert [r["donor"] for r in result.donor_retries] == [first], result.donor_retries
    assert f"under {ENOUGH_MARGIN}" in result.donor_retries[0]["audit"], result.donor_retries
    assert {face.donor for f in result.frames for face in f.faces} == {nxt}
    assert result.gate["donor_margin"][nxt] >= ENOUGH_MARGIN, result.gate
    assert result.audit.clean and result.audit.frames == 41
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "r.json"]  # no partial
    assert json.loads(report.read_text())["donor_retries"] == result.donor_retries


def test_a_failed_audit_of_the_written_file_leaves_nothing(tmp_path, monkeypatch):
    """The file's audit runs after the encode, outside the writer: if it fails, the partial
    file must go too (a failure that real input does not cause, so it is made to happen)."""
    import medswap.evaluate.stream

    def fails(*args, **kwargs):
        raise OSError("the disk went away")

    monkeypatch.setattr(medswap.evaluate.stream, "DLIB_SUSPECT_DISTANCE", 2.0)  # always near
    monkeypatch.setattr(medswap.pipeline, "audit_of_the_file", fails)
    with pytest.raises(OSError, match="the disk went away"):
        deidentify(shared_video("speech_a.mp4"), tmp_path / "out.mp4", audit=True, max_frames=N)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_run_whose_donor_cannot_be_read_fails_and_leaves_no_audit_process(tmp_path):
    """The audit's process starts before the donors load; a bad donor stops it, not waits."""
    import multiprocessing

    from media import portrait_clip

    from medswap.errors import DonorError

    clip = portrait_clip(tmp_path / "in.mp4", n_frames=3, size=96)
    bad = tmp_path / "donor.png"
    bad.write_text("not an image")
    with pytest.raises(DonorError, match="cannot read donor image"):
        deidentify(clip, tmp_path / "out.mp4", audit=True, donors=[str(bad)])
    assert multiprocessing.active_children() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["donor.png", "in.mp4"]
