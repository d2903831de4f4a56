"""The independent face models judge a face the same way at every resolution (4K included)."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from medswap.demo import demo_frames
from medswap.faces.independent import DlibFaces, SFaceRecogniser


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return float(iw * ih / union)


@pytest.fixture(scope="module")
def portrait_4k() -> tuple[np.ndarray, np.ndarray]:
    """A 720 px portrait frame and the same frame upscaled 3x into a 3840x2160 frame."""
    small = demo_frames(1, 720)[0]
    big = cv2.resize(small, (2160, 2160), interpolation=cv2.INTER_CUBIC)
    frame = np.empty((2160, 3840, 3), np.uint8)
    frame[:] = big[5, 5]
    frame[:, 840:3000] = big
    return small, frame


def test_yunet_frames_a_4k_face_as_it_frames_the_same_face_small(portrait_4k):
    """At 4K YuNet alone boxed the lower part of a large face (IoU 0.62 with the true box)."""
    small, frame = portrait_4k
    rec = SFaceRecogniser()
    expected = rec.detect(small)[0].box * 3 + np.array([840, 0, 840, 0])
    found = rec.detect(frame)
    assert len(found) == 1
    assert _iou(found[0].box, expected) > 0.9


def test_descriptors_of_one_face_agree_across_resolutions(portrait_4k):
    small, frame = portrait_4k
    rec, dlib_faces = SFaceRecogniser(), DlibFaces(upsample=0)
    face_small, face_big = rec.detect(small)[0], rec.detect(frame)[0]
    cosine = float(rec.descriptor(small, face_small) @ rec.descriptor(frame, face_big))
    assert cosine > 0.8
    d_small = dlib_faces.descriptor(small, dlib_faces.detect(small)[0])
    d_big = dlib_faces.descriptor(frame, dlib_faces.detect(frame)[0])
    assert np.linalg.norm(d_small - d_big) < 0.25


def test_sface_on_onnxruntime_gives_opencvs_feature(portrait_4k):
    """The pinned SFace file, its input list pruned in memory, runs on onnxruntime: the same
    feature as OpenCV's own FaceRecognizerSF gives, on faces of two people."""
    from skimage.data import astronaut

    rec = SFaceRecogniser()
    for image in (portrait_4k[0], astronaut()):
        face = rec.detect(image)[0]
        ours = rec.descriptor(image, face)
        row = np.zeros((1, 15), np.float32)
        row[0, :4] = (*face.box[:2], *(face.box[2:] - face.box[:2]))
        row[0, 4:14] = face.landmarks.reshape(-1)
        aligned = rec._rec.alignCrop(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), row)
        theirs = rec._rec.feature(aligned).ravel()
        assert float(ours @ theirs) / np.linalg.norm(theirs) > 0.99999


def test_pruning_the_input_list_keeps_every_weight_and_refuses_what_is_not_onnx():
    from medswap.faces.onnx_graph import without_initializer_inputs
    from medswap.models import model_path

    model = model_path("sface").read_bytes()
    pruned = without_initializer_inputs(model)
    # Only input declarations go: a few hundred bytes of a 10 MB file.
    assert 0 < len(model) - len(pruned) < 10_000
    assert without_initializer_inputs(pruned) == pruned
    with pytest.raises(ValueError, match="not an ONNX file"):
        without_initializer_inputs(b"\x0f" * 64)


def _opencv_yunet_rows(image_bgr: np.ndarray) -> np.ndarray:
    from medswap.models import model_path

    h, w = image_bgr.shape[:2]
    det = cv2.FaceDetectorYN.create(str(model_path("yunet")), "", (w, h), 0.6, 0.3, 5000)
    _, rows = det.detect(image_bgr)
    return np.zeros((0, 15), np.float32) if rows is None else rows


def test_yunet_on_onnxruntime_finds_the_faces_opencv_finds(portrait_4k):
    """The pinned YuNet file, its weights dequantised in memory and its input size freed, runs
    on onnxruntime: the same faces, points and scores as OpenCV's FaceDetectorYN, on several
    people, sizes (a 40 px face included), shapes that need padding, and an image of no face."""
    from matplotlib import cbook
    from skimage.data import astronaut, coffee

    from medswap.faces.yunet import YuNet

    hopper = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    people = [astronaut()[..., ::-1], hopper, portrait_4k[0][..., ::-1]]
    images = [coffee()[..., ::-1]]
    for image in people:
        for width in (1000, 333, 120):
            images.append(
                cv2.resize(image, (width, round(width * 0.77)), interpolation=cv2.INTER_AREA)
            )
    ours = YuNet(0.6)
    found = 0
    for image in images:
        image = np.ascontiguousarray(image)
        theirs, mine = _opencv_yunet_rows(image), ours(image)
        assert len(mine) == len(theirs), image.shape
        order_t, order_m = np.argsort(-theirs[:, 14]), np.argsort(-mine[:, 14])
        np.testing.assert_allclose(mine[order_m], theirs[order_t], atol=0.01)
        found += len(mine)
    assert found >= 9  # every person at every size (the coffee has no face)


def test_dequantize_follows_the_onnx_operator():
    from medswap.faces.onnx_graph import dequantize

    q = np.array([[0, 2, 4, 6], [-2, 0, 2, 4]], np.int8)
    # Per tensor.
    np.testing.assert_array_equal(
        dequantize(q, np.array([0.5], np.float32), np.array([2], np.int8)),
        [[-1, 0, 1, 2], [-2, -1, 0, 1]],
    )
    # Per row (axis 0).
    np.testing.assert_array_equal(
        dequantize(q, np.array([1.0, 2.0], np.float32), np.array([0, 1], np.int8), axis=0),
        [[0, 2, 4, 6], [-6, -2, 2, 6]],
    )
    # Blocks of two along axis 1.
    scale = np.array([[1.0, 0.5], [2.0, 1.0]], np.float32)
    zero = np.array([[0, 4], [0, 0]], np.int8)
    np.testing.assert_array_equal(
        dequantize(q, scale, zero, axis=1, block_size=2),
        [[0, 2, 0, 1], [-4, 0, 2, 4]],
    )


def test_dlib_resnet_on_onnxruntime_gives_dlibs_own_descriptor():
    """The forward pass on onnxruntime (dlib's pinned weights) against dlib's compiled one, on
    chips of two people, each also shifted and dimmed, so that every layer is exercised on
    more than one input (each layer's arithmetic or order wrong moves it by far more)."""
    import dlib

    from medswap.evaluate.privacy.gallery import builtin_donor_images
    from medswap.faces.dlib_resnet import DlibResNet
    from medswap.models import model_path

    ours = DlibResNet(str(model_path("dlib_resnet")))
    theirs = dlib.face_recognition_model_v1(str(model_path("dlib_resnet")))
    faces = DlibFaces(upsample=0)
    shape68 = dlib.shape_predictor(str(model_path("dlib_shape_68")))
    chips = []
    for image in builtin_donor_images().values():
        rect = dlib.rectangle(*(int(v) for v in faces.detect(image)[0].box))
        chip = dlib.get_face_chip(image, shape68(image, rect), size=150, padding=0.25)
        chips += [chip, np.roll(chip, (7, -5), axis=(0, 1)), (chip * 0.6).astype(np.uint8)]
    expected = [np.asarray(theirs.compute_face_descriptor(c)) for c in chips]
    got = [ours.descriptor(c) for c in chips]
    for e, g in zip(expected, got):
        assert np.abs(e - g).max() < 1e-5
    # The chips differ from each other by far more than the two implementations do.
    assert min(np.abs(a - b).max() for a, b in itertools.pairwise(expected)) > 0.01
    assert np.linalg.norm(expected[0] - expected[3]) > 0.6  # two people


def test_a_file_that_is_not_dlibs_network_is_refused_by_name(tmp_path):
    from medswap.errors import ModelError
    from medswap.faces.dlib_resnet import DlibResNet
    from medswap.models import model_path

    data = model_path("dlib_resnet").read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[: len(data) // 2])  # the last layers missing
    with pytest.raises(ModelError, match=r"cut\.dat: not dlib's face recognition ResNet \("):
        DlibResNet(str(cut))
    # The first convolution's vertical stride (2) made 1: the file still parses, but it is
    # not the network the forward pass is written for.
    from medswap.faces.dlib_resnet import _int, _tensor

    i = data.index(b"\x01\x05con_4") + 7
    _, i = _tensor(data, i)
    for _ in range(3):  # filters, rows, cols
        _, i = _int(data, i)
    assert data[i : i + 2] == b"\x01\x02"
    other = tmp_path / "other.dat"
    other.write_bytes(data[: i + 1] + b"\x01" + data[i + 2 :])
    with pytest.raises(ModelError, match=r"other\.dat: .*unexpected convolution 32x3x7x7/1\)"):
        DlibResNet(str(other))
    with pytest.raises(ValueError, match=r"150x150 RGB chip"):
        DlibResNet(str(model_path("dlib_resnet"))).descriptor(np.zeros((112, 112, 3), np.uint8))
