"""Video in and out, frame-exact.

Keypoints are compared frame to frame between an original and its de-identified copy, so the
output must have exactly the frames of the input: the same count, the same presentation
timestamps (PTS, in the same time base), the same size and the same display rotation. This
module owns that promise. It streams: one frame at a time is decoded, handed on and encoded, so
memory does not grow with the length of the video.

Frames are handed to the rest of medswap as upright RGB ``uint8`` arrays (H, W, 3): a phone
video stored sideways with a rotation flag is turned upright for the detectors, and turned back
before encoding, with the same rotation flag written to the output.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from medswap.errors import (
    CorruptVideoError,
    EmptyVideoError,
    InputNotFoundError,
    NotAVideoError,
    OutputError,
    UnsupportedVideoError,
)
from medswap.outputs import OPEN_PARTIALS, check_new_output, partial_path

log = logging.getLogger(__name__)

#: libx264 threads, fixed so that the same frames give the same bytes on any machine.
ENCODER_THREADS = 4
#: ...and no macroblock-tree rate control. With it, the same frames of hand_open_close.mp4
#: came out as different bytes from run to run (35-58 of 40-58 packets, pixels up to 35 levels
#: apart), also with one encoder thread and one lookahead thread: its floating-point
#: propagation did not reproduce inside a process that also runs MediaPipe. So two runs of one
#: clip gave different outputs, keypoints and measurements. Without it, every run gave the
#: same bytes; the cost is a little more bitrate for the same quality.
X264_PARAMS = "mbtree=0"
#: Containers medswap writes, by file suffix.
OUTPUT_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".m4v": "mp4"}


@dataclass(frozen=True)
class VideoInfo:
    """What a video is, read from its header (``n_frames`` is the header's count or 0)."""

    path: str
    width: int  # stored width, before rotation
    height: int
    fps: Fraction  # average frame rate; a variable-rate clip has no single true rate
    time_base: Fraction
    n_frames: int
    rotation: int  # display rotation in degrees, counter-clockwise, one of 0, 90, 180, 270
    codec: str
    pix_fmt: str
    has_audio: bool
    audio_codec: str | None
    duration_s: float
    #: Video streams in the file; only the first is read, de-identified and written.
    video_streams: int = 1

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as the video is shown, after rotation."""
        if self.rotation in (90, 270):
            return self.height, self.width
        return self.width, self.height


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its position, its timestamp and its upright RGB pixels."""

    index: int
    pts: int | None
    time_s: float
    image: np.ndarray  # (H, W, 3) uint8 RGB, upright


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputNotFoundError("no such file", path)
    if path.is_dir():
        raise NotAVideoError("is a folder, not a video file", path)
    if path.stat().st_size == 0:
        raise NotAVideoError("is empty (0 bytes)", path)
    if not os.access(path, os.R_OK):
        raise InputNotFoundError("cannot be read (permission denied)", path)


#: File signatures of video containers: a file that starts like one of these but cannot be
#: opened is a damaged or truncated video, not some other kind of file.
_VIDEO_MAGIC = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"\x1aE\xdf\xa3", b"RIFF")


def _looks_like_video(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(12)
    return head[4:8] in _VIDEO_MAGIC or head[:4] in _VIDEO_MAGIC


def _open_input(path: Path) -> av.container.InputContainer:
    _check_readable(path)
    try:
        container = av.open(str(path), mode="r")
    except av.error.InvalidDataError:
        if _looks_like_video(path):
            raise CorruptVideoError(
                "video container is damaged or truncated (cannot read its index)", path
            ) from None
        raise NotAVideoError("is not a video file (no container format recognised)", path) from None
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise NotAVideoError(f"cannot be opened as a video ({exc.strerror or exc})", path) from None
    if not container.streams.video:
        container.close()
        raise EmptyVideoError("contains no video frames (no video stream)", path)
    fmt = container.format.name
    if fmt == "image2" or fmt.endswith("_pipe"):  # png_pipe, jpeg_pipe, webp_pipe, ...
        container.close()
        kind = fmt.removesuffix("_pipe") if fmt != "image2" else "image"
        raise NotAVideoError(f"is a still image ({kind}), not a video", path)
    return container


def _normalise_rotation(degrees: float | int | None) -> int:
    if not degrees:
        return 0
    return int(round(float(degrees) / 90.0)) * 90 % 360


def _check_index(stream, path: Path) -> None:
    """A container index (MP4/MOV) that points past the end of the file means truncation."""
    try:
        entries = stream.index_entries
        end = max((e.pos + e.size for e in entries if e.pos >= 0), default=0)
    except (AttributeError, av.error.FFmpegError):
        return
    size = path.stat().st_size
    if end > size:
        missing = sum(1 for e in entries if e.pos + e.size > size)
        raise CorruptVideoError(
            f"video is truncated: {missing} of {len(entries)} frames lie past the end of the file",
            path,
        )


def probe(path: str | Path) -> VideoInfo:
    """Read a video's header and first frame; raise a typed error if it is not a usable video."""
    path = Path(path)
    container = _open_input(path)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx.codec is None or not ctx.name:
            raise UnsupportedVideoError("video codec is not supported by this build", path)
        _check_index(stream, path)
        rotation = 0
        first_frame = None
        try:
            for first_frame in container.decode(stream):
                rotation = _normalise_rotation(getattr(first_frame, "rotation", 0))
                break
        except av.error.FFmpegError as exc:
            raise CorruptVideoError(
                f"cannot decode the first frame ({exc.strerror or exc})", path
            ) from None
        if first_frame is None:
            raise EmptyVideoError("has a video stream but no decodable frame", path)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(0)
        audio = container.streams.audio
        duration_s = float(container.duration / av.time_base) if container.duration else 0.0
        return VideoInfo(
            path=str(path),
            width=first_frame.width,
            height=first_frame.height,
            fps=Fraction(rate),
            time_base=Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000),
            n_frames=int(stream.frames or 0),
            rotation=rotation,
            codec=ctx.name,
            pix_fmt=str(first_frame.format.name),
            has_audio=bool(audio),
            audio_codec=audio[0].codec_context.name if audio else None,
            duration_s=duration_s,
            video_streams=len(container.streams.video),
        )
    finally:
        container.close()


def _to_upright(image: np.ndarray, rotation: int) -> np.ndarray:
    # A display rotation of R degrees counter-clockwise is shown by rotating the stored image
    # R degrees counter-clockwise; np.rot90 with k>0 rotates counter-clockwise.
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def _to_stored(image: np.ndarray, rotation: int) -> np.ndarray:
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, -k)) if k else image


def _encoder_frame(rgb: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    """An upright RGB image as the encoder's input frame, in the stream's pixel format.

    For 4:2:0, OpenCV converts (BT.601, limited range, as FFmpeg's default scaler does),
    because that scaler, which ``encode`` would call, has no fast path from packed RGB (README,
    "Speed at stop 42").
    """
    if pix_fmt == "yuv420p":
        return av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), "yuv420p")
    return av.VideoFrame.from_ndarray(rgb, format="rgb24")


def read_frames(
    path: str | Path,
    info: VideoInfo | None = None,
    prefetch: int = 8,
    max_frames: int | None = None,
) -> Iterator[Frame]:
    """Yield every frame of a video in decode order, upright RGB, with its PTS.

    Decoding runs in a background thread ``prefetch`` frames ahead, so that decoding overlaps
    the detection and encoding work on the other core. A stream that breaks part-way raises
    :class:`CorruptVideoError` naming the frame, never a silent short read.
    """
    path = Path(path)
    info = info or probe(path)
    done = object()
    out: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()

    def produce() -> None:
        try:
            container = _open_input(path)
            try:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                tb = stream.time_base or Fraction(1, 90000)
                index = 0
                for packet in container.demux(stream):
                    if stop.is_set():
                        return
                    try:
                        frames = packet.decode()
                    except av.error.FFmpegError as exc:
                        raise CorruptVideoError(
                            f"decoding failed after frame {index} ({exc.strerror or exc})", path
                        ) from None
                    for frame in frames:
                        image = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
                        pts = frame.pts
                        time_s = (
                            float(pts * tb) if pts is not None else index / float(info.fps or 25)
                        )
                        out.put(Frame(index, pts, time_s, _to_upright(image, info.rotation)))
                        index += 1
                        if max_frames is not None and index >= max_frames:
                            return
                        if stop.is_set():
                            return
            finally:
                container.close()
        except BaseException as exc:  # handed to the consumer thread, which re-raises it
            out.put(exc)
        finally:
            out.put(done)

    thread = threading.Thread(target=produce, name="medswap-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # Drain so the producer can finish its put() and exit.
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                out.get(timeout=0.05)
        thread.join()


def count_frames(path: str | Path) -> int:
    """Count the decodable frames by decoding them (headers can be wrong)."""
    container = _open_input(Path(path))
    try:
        n = 0
        for _ in container.decode(video=0):
            n += 1
        return n
    except av.error.FFmpegError as exc:
        raise CorruptVideoError(
            f"decoding failed after frame {n} ({exc.strerror or exc})", path
        ) from None
    finally:
        container.close()


def read_timestamps(path: str | Path) -> list[int | None]:
    """Every frame's PTS in the stream's time base, in decode order."""
    container = _open_input(Path(path))
    try:
        return [f.pts for f in container.decode(video=0)]
    finally:
        container.close()


def check_output_path(
    path: str | Path, overwrite: bool = True, inputs: Sequence[str | Path] = ()
) -> Path:
    """Fail early, before any work, if an output cannot be written where asked."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise OutputError(
            f"unsupported output type '{suffix or '(none)'}'; use one of "
            f"{', '.join(sorted(OUTPUT_FORMATS))}",
            path,
        )
    return check_new_output(path, overwrite=overwrite, inputs=inputs)


class VideoWriter:
    """Encode frames to a new video that aligns frame by frame with ``like``.

    Used as a context manager. Frames are written to a hidden partial file and renamed to
    ``path`` only when the block exits cleanly and the frame count matches; on any error the
    partial file is removed, so a failed run leaves nothing that looks like a result. With
    ``publish=False`` the complete file stays under its partial name for the caller to check
    (the audit) and publish together with its report.

    Every frame keeps its input PTS and the stream keeps the input time base, so a
    variable-rate clip stays variable-rate. Encoding runs in a background thread.
    Container and stream metadata (creation time, device, location, titles) are not copied.
    Audio is copied packet for packet, unchanged, only when ``audio_from`` is given.
    """

    def __init__(
        self,
        path: str | Path,
        like: VideoInfo,
        audio_from: str | Path | None = None,
        crf: int = 18,
        preset: str = "veryfast",
        queue_size: int = 8,
        publish: bool = True,
    ) -> None:
        self.path = check_output_path(path)
        self.publish = publish
        self.like = like
        self.audio_from = Path(audio_from) if audio_from else None
        self.crf = crf
        self.preset = preset
        self.frames_written = 0
        self.busy_s = 0.0  # seconds the encoder thread spent encoding (the report's stage time)
        self._partial = partial_path(self.path)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._container = None
        self._stream = None
        self._last_pts: int | None = None

    @property
    def partial(self) -> Path:
        """The hidden file being written; complete after the block when ``publish`` is off."""
        return self._partial

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> VideoWriter:
        fmt = OUTPUT_FORMATS[self.path.suffix.lower()]
        OPEN_PARTIALS.add(self._partial)
        try:
            self._container = av.open(str(self._partial), mode="w", format=fmt)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot create output ({exc})", self.path) from None
        self._container.metadata.clear()
        w, h = self.like.width, self.like.height
        stream = self._container.add_stream("libx264")
        stream.width, stream.height = w, h
        # libx264 4:2:0 needs even sides; odd sizes are kept exact with 4:4:4.
        stream.pix_fmt = "yuv420p" if (w % 2 == 0 and h % 2 == 0) else "yuv444p"
        stream.time_base = self.like.time_base
        stream.codec_context.time_base = self.like.time_base
        if self.like.fps:
            stream.codec_context.framerate = self.like.fps
        # A fixed encoder thread count: libx264's output depends on it, and outputs should be
        # the same bytes whichever machine of a cluster encodes them.
        stream.options = {
            "crf": str(self.crf),
            "preset": self.preset,
            "threads": str(ENCODER_THREADS),
            "x264-params": X264_PARAMS,
        }
        stream.thread_type = "AUTO"
        if self.like.rotation:
            stream.set_display_rotation(self.like.rotation)
        self._stream = stream
        self._audio_in = None
        if self.audio_from is not None and self.like.has_audio:
            self._audio_in = av.open(str(self.audio_from))
            a_in = self._audio_in.streams.audio[0]
            self._audio_out = self._container.add_stream_from_template(a_in)
            self._audio_out.metadata.clear()
        self._thread = threading.Thread(
            target=self._encode_loop, name="medswap-encode", daemon=True
        )
        self._thread.start()
        return self

    def write(self, image: np.ndarray, pts: int | None) -> None:
        """Queue one upright RGB frame with the PTS of the input frame it replaces."""
        if self._error is not None:
            self._raise_encoding_error()
        h, w = image.shape[:2]
        ew, eh = self.like.display_size
        if (w, h) != (ew, eh) or image.dtype != np.uint8 or image.ndim != 3:
            raise ValueError(
                f"frame must be ({eh}, {ew}, 3) uint8, got {image.shape} {image.dtype}"
            )
        self._queue.put((image, pts))
        self.frames_written += 1

    def _encode_loop(self) -> None:
        stream = self._stream
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                image, pts = item
                t0 = time.perf_counter()
                frame = _encoder_frame(_to_stored(image, self.like.rotation), stream.pix_fmt)
                if pts is None:
                    pts = 0 if self._last_pts is None else self._last_pts + 1
                frame.pts = pts
                frame.time_base = self.like.time_base
                self._last_pts = pts
                for packet in stream.encode(frame):
                    self._container.mux(packet)
                self.busy_s += time.perf_counter() - t0
            for packet in stream.encode():
                self._container.mux(packet)
        except BaseException as exc:
            self._error = exc
            # Keep draining so write() never blocks forever on a full queue.
            while self._queue.get() is not None:
                pass

    def _check_complete(self) -> None:
        """Read the finished file back: every frame must be in it before it can be a result.

        FFmpeg's muxer does not report a failed write (a full disk, a file-size limit): the
        file is silently cut short. Counting its packets costs a read of the file, no decoding.
        """
        found = -1
        try:
            with av.open(str(self._partial)) as written:
                found = sum(1 for p in written.demux(video=0) if p.size)
        except (av.error.FFmpegError, OSError, IndexError):
            pass
        if found != self.frames_written:
            with contextlib.suppress(FileNotFoundError):
                self._partial.unlink()
            OPEN_PARTIALS.discard(self._partial)
            raise OutputError(
                f"the written file is incomplete ({max(found, 0)} of {self.frames_written} "
                "frames could be read back; is the disk full?)",
                self.path,
            )

    def _raise_encoding_error(self) -> None:
        """The encoder thread's failure: a write error (disk full) is the output's problem."""
        err = self._error
        if isinstance(err, (OSError, av.error.FFmpegError)):
            detail = (
                "no space left on the device"
                if getattr(err, "errno", None) == errno.ENOSPC
                else err
            )
            raise OutputError(f"encoding failed ({detail})", self.path) from None
        raise err

    def _copy_audio(self) -> None:
        if self._audio_in is None:
            return
        a_in = self._audio_in.streams.audio[0]
        for packet in self._audio_in.demux(a_in):
            if packet.dts is None:
                continue
            packet.stream = self._audio_out
            self._container.mux(packet)

    def __exit__(self, exc_type, exc, tb) -> None:
        failed = exc_type is not None
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        try:
            if not failed and self._error is None:
                self._copy_audio()
        except av.error.FFmpegError as err:
            self._error = err
        with contextlib.suppress(Exception):
            self._container.close()
        if self._audio_in is not None:
            self._audio_in.close()
        if failed or self._error is not None:
            OPEN_PARTIALS.discard(self._partial)
            with contextlib.suppress(FileNotFoundError):
                self._partial.unlink()
            if not failed:
                self._raise_encoding_error()
            return
        self._check_complete()
        if not self.publish:  # the caller publishes it with its report (outputs.publish)
            return
        OPEN_PARTIALS.discard(self._partial)
        try:
            os.replace(self._partial, self.path)
        except OSError as exc:
            self._partial.unlink(missing_ok=True)
            raise OutputError(
                f"cannot write the output ({exc.strerror or exc})", self.path
            ) from None


def write_video(
    path: str | Path, frames: Iterator[np.ndarray], fps: Fraction, size: tuple[int, int]
) -> Path:
    """Write a new constant-rate video from upright RGB frames (demo clips, test fixtures)."""
    fps = Fraction(fps)
    like = VideoInfo(
        path=str(path),
        width=size[0],
        height=size[1],
        fps=fps,
        time_base=1 / fps,
        n_frames=0,
        rotation=0,
        codec="h264",
        pix_fmt="yuv420p",
        has_audio=False,
        audio_codec=None,
        duration_s=0.0,
    )
    with VideoWriter(path, like) as writer:
        for i, image in enumerate(frames):
            writer.write(image, i)
    return Path(path)


def reencode(input: str | Path, output: str | Path, max_frames: int | None = None) -> Path:
    """Re-encode a video once through medswap's encoder, changing nothing else (the control)."""
    info = probe(input)
    with VideoWriter(output, info) as writer:
        for frame in read_frames(input, info=info, max_frames=max_frames):
            writer.write(frame.image, frame.pts)
    return Path(output)
