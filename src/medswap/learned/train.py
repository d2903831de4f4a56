"""Train a swap model for one patient and one donor: ``medswap train``.

1. Patient material: every frame of the subject videos with a face, aligned and cropped.
2. Donor material, one of:
   - ``rendered`` (default for a donor image): the mesh engine paints the donor image onto the
     patient's own frames, and those swapped frames are cropped with the patient's alignment.
     The donor decoder thus sees the donor in every pose and expression the patient makes
     (blinks, speech, smiles), which one still portrait cannot show it.
   - ``direct``: the donor image(s) as they are (one crop each, augmented).
   - a donor video: its frames with a face (another consenting person's recording).
3. Training: Adam on both identities each step, an L1 loss weighted to the face (eyes and mouth
   three times), plus a mask loss; checkpoints every ``checkpoint_every`` steps to
   ``MODEL.ckpt``, a loss curve (CSV and PNG) beside the model, resumable.

On the CPU with a fixed seed and thread count the run is bit-for-bit reproducible
(``torch.use_deterministic_algorithms``); on CUDA it is close but not guaranteed identical.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from medswap.errors import DonorError, InputNotFoundError, UsageError
from medswap.learned import data
from medswap.learned.identity import mean_descriptor
from medswap.learned.modelfile import read_header, read_model_file, write_model_file

log = logging.getLogger(__name__)

MATERIALS = ("rendered", "direct")
TrainProgress = Callable[[int, int, float, float, float], None]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the weights (with the data). Stored in the model header."""

    size: int = 64
    steps: int = 1000
    batch: int = 16
    lr: float = 5e-4
    seed: int = 0
    device: str = "cpu"
    threads: int = 1  # a shared 2-core machine: one thread was 5x faster than two
    checkpoint_every: int = 250
    material: str = "rendered"
    max_frames: int | None = None  # per subject video (None: all)
    augment: bool = True

    def check(self) -> None:
        if self.size not in data.SIZES:
            raise UsageError(f"--size must be one of {', '.join(map(str, data.SIZES))}")
        if self.steps < 1:
            raise UsageError(f"--steps must be at least 1, got {self.steps}")
        if self.batch < 1:
            raise UsageError(f"--batch must be at least 1, got {self.batch}")
        if self.device not in ("cpu", "cuda"):
            raise UsageError(f"--device must be cpu or cuda, got '{self.device}'")
        if self.material not in MATERIALS:
            raise UsageError(f"--donor-material must be one of {', '.join(MATERIALS)}")


@dataclass
class Material:
    """Both identities' crops plus what the model file must record about them."""

    patient: data.FaceSet
    donor: data.FaceSet
    template: np.ndarray
    fingerprint: np.ndarray
    fingerprint_frames: int
    donor_info: dict
    subjects: list[str]
    seconds: float = 0.0


@dataclass
class TrainResult:
    output: Path
    checkpoint: Path
    steps: int
    seconds: float  # training loop only (this run)
    prepare_seconds: float
    losses: list[tuple[int, float, float]] = field(default_factory=list)
    loss_csv: Path | None = None
    loss_png: Path | None = None
    patient_crops: int = 0
    donor_crops: int = 0

    @property
    def final_loss(self) -> tuple[float, float]:
        tail = self.losses[-max(1, len(self.losses) // 10) :]
        return float(np.mean([t[1] for t in tail])), float(np.mean([t[2] for t in tail]))


def _frames_and_meshes(paths: Sequence[str | Path], max_frames: int | None):
    for p in paths:
        if not Path(p).exists():
            raise InputNotFoundError("subject video not found", p)
        yield from data.video_meshes(p, max_frames=max_frames)


def prepare_material(
    subjects: Sequence[str | Path], donors: Sequence[str | Path], config: TrainConfig
) -> Material:
    """Crops of patient and donor, the alignment template and the subject fingerprint."""
    from medswap.swap.donors import BUILTIN_DONORS, builtin_donor, load_donor

    t0 = time.perf_counter()
    template = data.canonical_template(builtin_donor("average").landmarks)
    pairs = list(_frames_and_meshes(subjects, config.max_frames))
    if not pairs:
        raise UsageError("no face found in any subject video: nothing to train on")
    size = config.size
    patient = data.FaceSet.build("patient", pairs, template, size)
    step = max(1, len(pairs) // 12)
    fingerprint, n_fp = mean_descriptor((img for img, _ in pairs[::step]), limit=12)
    if fingerprint is None:
        raise UsageError("the identity recogniser (dlib) finds no face in the subject videos")

    images = [d for d in donors if str(d) in BUILTIN_DONORS or data.is_image(d)]
    videos = [d for d in donors if d not in images]
    if images and videos:
        raise UsageError("give donor images or donor videos, not both")
    sets: list[data.FaceSet] = []
    if videos:
        for v in videos:
            if not Path(v).exists():
                raise InputNotFoundError("donor video not found", v)
            sets.append(data.FaceSet.build(Path(v).stem, data.video_meshes(v), template, size))
        material, names, fps = "video", [Path(v).stem for v in videos], []
    else:
        ds = [load_donor(d) for d in images]
        names, fps = [d.name for d in ds], [d.fingerprint for d in ds]
        material = config.material
        if material == "direct":
            sets = [
                data.FaceSet.build(d.name, [(d.image, d.landmarks)], template, size) for d in ds
            ]
        else:
            sets = [_rendered(d, pairs, template, size) for d in ds]
    donor = data.FaceSet.concat("donor", sets) if any(len(s) for s in sets) else sets[0]
    if not len(donor):
        raise DonorError("no face found in the donor material", ", ".join(map(str, donors)))
    info = {
        "name": "+".join(names),
        "fingerprint": "+".join(fps) if fps else "",
        "material": material,
        "sources": [Path(str(d)).name for d in donors],
        "crops": len(donor),
    }
    return Material(
        patient,
        donor,
        template,
        fingerprint,
        n_fp,
        info,
        [Path(s).name for s in subjects],
        time.perf_counter() - t0,
    )


def _rendered(donor, pairs, template, size) -> data.FaceSet:
    """The donor painted by the mesh engine onto each patient frame, cropped the same way."""
    from medswap.swap.engine import MeshSwapper

    swapper = MeshSwapper()
    out = []
    for image, lm in pairs:
        frame = image.copy()
        try:
            swapper.swap(frame, 0, lm, donor, None)
        except (ValueError, np.linalg.LinAlgError):
            continue
        out.append((frame, lm))
    return data.FaceSet.build(donor.name, out, template, size)


def _masked_loss(torch, out, mask_pred, target, weight, mask):
    """Weighted L1 over the face (eyes and mouth heavier) plus the decoder's mask."""
    w = weight.unsqueeze(1)
    l1 = (w * (out - target).abs()).sum() / (w.sum() * 3 + 1e-6)
    bce = torch.nn.functional.binary_cross_entropy(mask_pred, mask.unsqueeze(1))
    return l1 + 0.1 * bce


def _setup_torch(config: TrainConfig):
    import torch

    if config.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA GPU on this machine")
    torch.set_num_threads(config.threads)
    if config.device == "cpu":
        torch.use_deterministic_algorithms(True)
    return torch


def train(
    material: Material,
    output: str | Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    progress: TrainProgress | None = None,
) -> TrainResult:
    """Train (or go on training) and write ``output`` plus its checkpoint and loss curve."""
    config.check()
    torch = _setup_torch(config)
    from medswap.learned.model import Architecture, SwapAutoencoder, to_tensor

    out = Path(output)
    ckpt = checkpoint_path(out)
    arch = Architecture(size=config.size)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = SwapAutoencoder(arch).to(config.device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.5, 0.999))
    losses: list[tuple[int, float, float]] = []
    start = 0
    prior_seconds = 0.0
    if resume:
        start, losses, prior_seconds = _restore(ckpt, model, opt, rng, torch, config, material)
    a, b = material.patient, material.donor
    t0 = time.perf_counter()

    def batch_of(s: data.FaceSet):
        idx = rng.integers(0, len(s), config.batch)
        imgs, ws, ms = s.crops[idx], s.weights[idx], s.masks[idx]
        if config.augment:
            imgs, ws, ms = data.augment(imgs, ws, ms, rng)
        x = to_tensor(imgs, config.device)
        w = torch.from_numpy(ws).to(config.device)
        m = torch.from_numpy(ms).to(config.device).float().div_(255.0)
        return x, w, m

    model.train()
    for step in range(start + 1, config.steps + 1):
        xa, wa, ma = batch_of(a)
        xb, wb, mb = batch_of(b)
        opt.zero_grad(set_to_none=True)
        la = _masked_loss(torch, *model(xa, "a"), xa, wa, ma)
        lb = _masked_loss(torch, *model(xb, "b"), xb, wb, mb)
        (la + lb).backward()
        opt.step()
        losses.append((step, float(la.detach()), float(lb.detach())))
        elapsed = prior_seconds + time.perf_counter() - t0
        if progress is not None:
            progress(step, config.steps, losses[-1][1], losses[-1][2], elapsed)
        if step % config.checkpoint_every == 0 or step == config.steps:
            _save(ckpt, model, opt, rng, torch, config, material, losses, elapsed, train=True)
            write_loss_curve(out, losses)
    seconds = time.perf_counter() - t0
    total = prior_seconds + seconds
    _save(out, model, opt, rng, torch, config, material, losses, total, train=False)
    csv_path, png_path = write_loss_curve(out, losses)
    log.info("%s: %d steps in %.0fs (%s)", out.name, config.steps, total, config.device)
    return TrainResult(
        out,
        ckpt,
        config.steps,
        seconds,
        material.seconds,
        losses,
        csv_path,
        png_path,
        len(a),
        len(b),
    )


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".ckpt")


def _header(config, material, losses, seconds) -> dict:
    import torch

    from medswap.learned.model import Architecture

    keep = max(1, len(losses) // 200)
    return {
        "torch_version": torch.__version__,
        "architecture": Architecture(size=config.size).to_json(),
        "template": np.round(material.template, 6).tolist(),
        "subject": {
            "fingerprint": [round(float(v), 7) for v in material.fingerprint],
            "fingerprint_frames": material.fingerprint_frames,
            "sources": material.subjects,
            "crops": len(material.patient),
        },
        "donor": material.donor_info,
        "training": {
            "steps": len(losses) and losses[-1][0],
            "batch": config.batch,
            "lr": config.lr,
            "seed": config.seed,
            "device": config.device,
            "threads": config.threads,
            "augment": config.augment,
            "seconds": round(seconds, 2),
            "losses": [[s, round(la, 5), round(lb, 5)] for s, la, lb in losses[::keep]],
            "final_loss": [round(losses[-1][1], 5), round(losses[-1][2], 5)] if losses else None,
        },
    }


def _save(path, model, opt, rng, torch, config, material, losses, seconds, *, train: bool):
    header = _header(config, material, losses, seconds)
    if not train:
        write_model_file(path, header, {k: v.cpu() for k, v in model.swap_state().items()})
        return
    state = {
        "decoder_a": {k: v.cpu() for k, v in model.decoder_a.state_dict().items()},
        "optimizer": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": rng.bit_generator.state,
        "losses": [list(t) for t in losses],
        "seconds": seconds,
        "config": {k: v for k, v in vars(config).items() if k != "steps"},
    }
    write_model_file(
        path, header, {k: v.cpu() for k, v in model.swap_state().items()}, train_state=state
    )


def _restore(ckpt, model, opt, rng, torch, config, material):
    """Load a checkpoint into the model, optimiser and random generators; (step, losses, s)."""
    from medswap.errors import ModelFileError
    from medswap.learned.identity import dlib_distance

    if not ckpt.exists():
        raise InputNotFoundError("no checkpoint to resume from", ckpt)
    mf = read_model_file(ckpt, with_train_state=True)
    st = mf.train_state
    old = st.get("config", {})
    for key in ("size", "batch", "lr", "seed", "material"):
        if key in old and old[key] != getattr(config, key):
            raise UsageError(
                f"--resume with a different {key} ({getattr(config, key)} != {old[key]})"
            )
    if dlib_distance(mf.subject_fingerprint, material.fingerprint) >= 0.6:
        raise ModelFileError("checkpoint was trained for another person", ckpt)
    model.load_state_dict(
        {**mf.weights, **{f"decoder_a.{k}": v for k, v in st["decoder_a"].items()}}
    )
    opt.load_state_dict(st["optimizer"])
    torch.set_rng_state(st["torch_rng"])
    rng.bit_generator.state = st["numpy_rng"]
    losses = [(int(s), float(a), float(b)) for s, a, b in st["losses"]]
    step = losses[-1][0] if losses else 0
    if step >= config.steps:
        raise UsageError(f"checkpoint is already at step {step}; ask for more --steps")
    log.info("resuming %s at step %d", ckpt.name, step)
    return step, losses, float(st["seconds"])


def write_loss_curve(output: Path, losses) -> tuple[Path, Path]:
    """``MODEL.loss.csv`` (every step) and ``MODEL.loss.png`` beside the model."""
    csv_path = output.with_name(output.name + ".loss.csv")
    png_path = output.with_name(output.name + ".loss.png")
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "loss_patient", "loss_donor"])
        w.writerows((s, f"{a:.6f}", f"{b:.6f}") for s, a, b in losses)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arr = np.array(losses, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    k = max(1, len(arr) // 50)
    for col, label in ((1, "patient (decoder A)"), (2, "donor (decoder B)")):
        smooth = np.convolve(arr[:, col], np.ones(k) / k, mode="valid")
        ax.plot(arr[k - 1 :, 0], smooth, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("masked L1 + mask loss")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(output.name)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return csv_path, png_path


def train_model(
    subjects: Sequence[str | Path],
    donors: Sequence[str | Path],
    output: str | Path,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    progress: TrainProgress | None = None,
) -> TrainResult:
    """The Python twin of ``medswap train``: prepare material, then train."""
    config = config or TrainConfig()
    config.check()
    out = Path(output)
    if not out.parent.is_dir():
        from medswap.errors import OutputError

        raise OutputError("output folder does not exist", out)
    from medswap.swap.donors import BUILTIN_DONORS

    for p in subjects:  # fail fast, before minutes of preparation
        if not Path(p).is_file():
            raise InputNotFoundError("subject video not found", p)
    for d in donors:
        if str(d) not in BUILTIN_DONORS and not Path(d).is_file():
            raise InputNotFoundError("donor image or video not found", d)
    _setup_torch(config)  # no torch, no GPU
    if resume:  # and on a checkpoint that cannot be resumed
        ckpt = checkpoint_path(out)
        if not ckpt.exists():
            raise InputNotFoundError("no checkpoint to resume from", ckpt)
        done = read_header(ckpt)["training"]["steps"]
        if done >= config.steps:
            raise UsageError(f"checkpoint is already at step {done}; ask for more --steps")
    material = prepare_material(subjects, donors, config)
    log.info(
        "material: %d patient crops, %d donor crops (%s) in %.1fs",
        len(material.patient),
        len(material.donor),
        material.donor_info["material"],
        material.seconds,
    )
    result = train(material, out, config, resume=resume, progress=progress)
    return replace(result, prepare_seconds=material.seconds)
