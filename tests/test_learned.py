"""The learned engine: training, determinism, model-file validation, the subject check, e2e.

Needs the optional extra (torch); skipped with that reason without it. All on clips built from
packaged public-domain portraits, so no ../shared media is needed; about a minute in total.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from fractions import Fraction

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the learned engine needs the extra medswap[learned]")

from media import portrait_clip  # noqa: E402

from medswap import video  # noqa: E402
from medswap.cli import main  # noqa: E402
from medswap.errors import ModelFileError  # noqa: E402
from medswap.learned.modelfile import read_model_file, write_model_file  # noqa: E402
from medswap.learned.train import TrainConfig, prepare_material, train  # noqa: E402
from medswap.pipeline import deidentify  # noqa: E402
from medswap.swap.donors import shipped_portrait  # noqa: E402
from medswap.types import FaceStatus  # noqa: E402

CONFIG = TrainConfig(size=64, steps=40, batch=8, checkpoint_every=20, material="direct")


def hopper_clip(path, n_frames: int = 12, size: int = 320):
    """Grace Hopper's portrait, gently moving: a different person from the astronaut clip."""
    image = cv2.resize(shipped_portrait("grace_hopper")[40:440, 56:456], (300, 300))
    frames = []
    for i in range(n_frames):
        m = cv2.getRotationMatrix2D((150, 150), 3 * np.sin(i / 3), size / 300)
        m[:, 2] += (size / 2 - 150, size / 2 - 150)
        frames.append(cv2.warpAffine(image, m, (size, size), borderMode=cv2.BORDER_REFLECT))
    return video.write_video(path, iter(frames), Fraction(25), (size, size))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return portrait_clip(tmp_path_factory.mktemp("learned") / "patient.mp4", n_frames=20)


@pytest.fixture(scope="module")
def material(clip):
    return prepare_material([clip], ["grace_hopper"], CONFIG)


@pytest.fixture(scope="module")
def trained(material, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "patient.medswap"
    return train(material, out, CONFIG)


def test_material_is_aligned_and_weighted(material):
    assert len(material.patient) == 20 and len(material.donor) == 1
    assert material.patient.crops.shape == (20, 64, 64, 3)
    # The eye corners land on the template in every crop (the alignment is the rigid fit).
    spread = material.patient.landmarks[:, [33, 263]].std(axis=0).max()
    assert spread < 1.5, spread
    w = material.patient.weights[0]
    assert w.max() == pytest.approx(3.0) and w.min() == pytest.approx(0.05)
    assert material.fingerprint.shape == (128,)


def test_loss_falls_on_a_tiny_set(trained):
    losses = np.array(trained.losses)
    assert len(losses) == 40
    first, last = losses[:5, 1:].mean(axis=0), losses[-10:, 1:].mean(axis=0)
    assert np.all(last < 0.8 * first), (first, last)
    assert trained.loss_csv.read_text().startswith("step,loss_patient,loss_donor\n")
    assert trained.loss_png.stat().st_size > 1000


def test_model_file_records_what_it_is(trained, material):
    mf = read_model_file(trained.output)
    h = mf.header
    assert h["format"] == "medswap-learned-swap" and h["kind"] == "model"
    assert h["architecture"]["size"] == 64 and h["training"]["steps"] == 40
    assert h["donor"]["name"] == "grace_hopper" and h["donor"]["material"] == "direct"
    assert np.allclose(mf.subject_fingerprint, material.fingerprint, atol=1e-6)
    # No patient decoder in a de-identification model; the checkpoint has it.
    assert not any(k.startswith("decoder_a.") for k in mf.weights)
    ck = read_model_file(trained.checkpoint, with_train_state=True)
    assert ck.header["kind"] == "checkpoint" and "decoder_a" in ck.train_state


def _weights(path):
    return read_model_file(path).weights


def test_fixed_seed_is_bit_identical_and_resume_continues_exactly(material, tmp_path):
    cfg = TrainConfig(size=64, steps=6, batch=4, checkpoint_every=3, material="direct")
    a = train(material, tmp_path / "a.medswap", cfg).output
    b = train(material, tmp_path / "b.medswap", cfg).output
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    other = train(material, tmp_path / "c.medswap", TrainConfig(**{**vars(cfg), "seed": 1}))
    assert not all(torch.equal(wa[k], v) for k, v in _weights(other.output).items())
    # Stopped after 3 steps and resumed to 6: the same weights as the uninterrupted run.
    half = TrainConfig(**{**vars(cfg), "steps": 3})
    train(material, tmp_path / "r.medswap", half)
    r = train(material, tmp_path / "r.medswap", cfg, resume=True)
    wr = _weights(r.output)
    assert all(torch.equal(wa[k], wr[k]) for k in wa)
    assert [s for s, *_ in r.losses] == list(range(1, 7))


def test_end_to_end_learned_is_frame_exact(trained, clip, tmp_path):
    out = tmp_path / "learned.mp4"
    result = deidentify(clip, out, engine="learned", model=trained.output, occlusion=False)
    a = list(video.read_timestamps(clip))
    b = list(video.read_timestamps(out))
    assert len(a) == len(b) == result.totals.frames == 20
    assert a == b
    assert result.totals.frames_swapped >= 18
    assert all(
        f.status in (FaceStatus.SWAPPED, FaceStatus.OBSCURED)
        for o in result.frames
        for f in o.faces
    )
    assert result.settings["engine"] == "learned"
    assert result.donors[0].startswith("grace_hopper:")
    # The face changed: the centre of the face differs from the original.
    f0 = next(video.read_frames(clip)).image.astype(float)
    g0 = next(video.read_frames(out)).image.astype(float)
    assert np.abs(f0[100:220, 110:210] - g0[100:220, 110:210]).mean() > 8
    # The same through the command line.
    rc = main(
        [
            "-q",
            "deidentify",
            str(clip),
            "-o",
            str(tmp_path / "cli.mp4"),
            "--engine",
            "learned",
            "--model",
            str(trained.output),
            "--max-frames",
            "5",
        ]
    )
    assert rc == 0


def test_another_person_is_refused(trained, tmp_path, capsys):
    other = hopper_clip(tmp_path / "other.mp4")
    with pytest.raises(ModelFileError) as err:
        deidentify(other, tmp_path / "out.mp4", engine="learned", model=trained.output)
    msg = str(err.value)
    assert re.fullmatch(
        re.escape(str(trained.output))
        + r": trained for another person \(distance \d\.\d\d > 0\.6\)",
        msg,
    ), msg
    assert not (tmp_path / "out.mp4").exists()
    rc = main(
        [
            "deidentify",
            str(other),
            "-o",
            str(tmp_path / "o.mp4"),
            "--engine",
            "learned",
            "--model",
            str(trained.output),
        ]
    )
    assert rc == ModelFileError.exit_code == 15
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert (
        err_lines[-1].startswith("medswap: error: ")
        and "trained for another person" in (err_lines[-1])
    )


def _expect(path, message: str):
    with pytest.raises(ModelFileError) as err:
        read_model_file(path)
    assert str(err.value) == f"{path}: {message}"


def test_corrupt_and_foreign_model_files(trained, clip, tmp_path, capsys):
    blob = trained.output.read_bytes()
    truncated = tmp_path / "truncated.medswap"
    truncated.write_bytes(blob[: len(blob) // 2])
    _expect(truncated, "truncated or corrupt model file (its zip directory is missing)")

    flipped = bytearray(blob)
    start = blob.index(b"weights.pt") + 200  # inside the stored weights
    flipped[start : start + 16] = bytes(16)
    bad = tmp_path / "flipped.medswap"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ModelFileError, match=r"corrupt model file \(weights\.pt: Bad CRC-32"):
        read_model_file(bad)

    foreign_zip = tmp_path / "foreign.medswap"
    with zipfile.ZipFile(foreign_zip, "w") as zf:
        zf.writestr("readme.txt", "hello")
    _expect(foreign_zip, "not a medswap model file (a zip without header.json)")

    pickled = tmp_path / "pickle.medswap"
    pickled.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    _expect(pickled, "not a medswap model file (not a zip archive)")

    torch_dict = tmp_path / "torch.medswap"  # a torch.save file is a zip, but not ours
    torch.save({"w": torch.zeros(3)}, torch_dict)
    _expect(torch_dict, "not a medswap model file (a zip without header.json)")

    empty = tmp_path / "empty.medswap"
    empty.write_bytes(b"")
    _expect(empty, "empty file, not a medswap model file")

    mf = read_model_file(trained.output)
    newer = tmp_path / "newer.medswap"
    write_model_file(newer, {**mf.header, "format_version": 99}, mf.weights)
    with pytest.raises(ModelFileError, match=r"made by a newer medswap \(format version 99;"):
        read_model_file(newer)

    # The command line: one line, exit code 15, no traceback.
    rc = main(
        [
            "deidentify",
            str(clip),
            "-o",
            str(tmp_path / "o.mp4"),
            "--engine",
            "learned",
            "--model",
            str(truncated),
        ]
    )
    assert rc == 15
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"medswap: error: {truncated}: truncated or corrupt model file "
        "(its zip directory is missing)"
    )


def test_cli_train_writes_a_model(clip, tmp_path, capsys):
    out = tmp_path / "cli.medswap"
    rc = main(
        [
            "-q",
            "train",
            "--subject",
            str(clip),
            "--donor",
            "grace_hopper",
            "-o",
            str(out),
            "--steps",
            "4",
            "--batch",
            "4",
            "--donor-material",
            "direct",
        ]
    )
    assert rc == 0
    assert read_model_file(out).header["training"]["steps"] == 4
    assert (tmp_path / "cli.medswap.loss.csv").exists()
    assert (tmp_path / "cli.medswap.ckpt").exists()
    rc = main(
        [
            "-q",
            "train",
            "--subject",
            str(clip),
            "--donor",
            "grace_hopper",
            "-o",
            str(out),
            "--steps",
            "4",
            "--resume",
            "--donor-material",
            "direct",
            "--batch",
            "4",
        ]
    )
    assert rc == 2
    assert "already at step 4" in capsys.readouterr().err


def test_compare_engines_mesh_and_learned_in_the_same_tables(clip, tmp_path):
    out = tmp_path / "cmp"
    args = ["-q", "compare", str(clip), "-o", str(out), "--methods", "swap,blur"]
    args += ["--engines", "mesh,learned", "--learned-steps", "20", "--privacy-stride", "10"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["methods"] == ["reencode", "swap", "swap-learned", "blur"]
    assert set(summary["privacy"]) == {"reencode", "swap", "swap-learned", "blur"}
    assert summary["privacy"]["swap-learned"]["frames"] > 0
    models = list(out.rglob("*.medswap"))
    assert [m.stem for m in models] == ["swap-learned"], "one model, trained on the clip itself"
    assert read_model_file(models[0]).header["training"]["steps"] == 20
    html = (out / "report.html").read_text()
    assert "swap-learned" in html
