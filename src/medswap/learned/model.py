"""The deepfake autoencoder: one shared encoder, one decoder per identity.

The encoder sees aligned crops of both the patient (A) and the donor (B) and must describe
both with one code: pose, expression, eyelids, mouth, light. Each decoder learns to paint its
own identity from that code. Swapping means encoding a patient crop and decoding it with the
donor's decoder: the pixels, and so the face geometry of the output, come from a network that
has only ever been taught to draw the donor.

Sized for a CPU: four stride-2 convolutions down to a 4x4 (size 64) grid, a dense bottleneck
that forces a compact code (the bottleneck is what makes the code identity-free enough to
swap), and four upsampling stages back. Each decoder outputs RGB and a face mask.
torch is imported here at module level: import this module only from the learned engine.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Architecture:
    """The hyper-parameters that fix the shapes of every weight (stored in the model file).

    The defaults cost about 30 million multiply-adds per 64-pixel crop forward: a training
    step (16 crops of each identity, forward and backward) is a fraction of a second on two
    CPU cores, so a thousand steps fit in minutes.
    """

    size: int = 64
    width: int = 16  # channels of the first encoder stage; doubles each stage
    latent: int = 256  # length of the bottleneck code
    decoder_width: int = 128  # channels at the decoder's smallest grid; halves each stage
    stages: int = 4

    def to_json(self) -> dict:
        return asdict(self)


def _down(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.1))


def _up(c_in: int, c_out: int) -> nn.Module:
    # Nearest upsampling + conv (no transposed conv: no checkerboard; deterministic on CPU).
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.LeakyReLU(0.1),
    )


class Encoder(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        chans = [3] + [arch.width * 2**i for i in range(arch.stages)]
        self.convs = nn.Sequential(*[_down(a, b) for a, b in itertools.pairwise(chans)])
        self.grid = arch.size // 2**arch.stages
        flat = chans[-1] * self.grid**2
        self.dense = nn.Sequential(nn.Flatten(), nn.Linear(flat, arch.latent))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.convs(x))


class Decoder(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        c = arch.decoder_width
        self.grid = arch.size // 2**arch.stages
        self.c = c
        self.dense = nn.Linear(arch.latent, c * self.grid**2)
        chans = [c] + [max(16, c // 2 ** (i + 1)) for i in range(arch.stages)]
        self.ups = nn.Sequential(*[_up(a, b) for a, b in itertools.pairwise(chans)])
        self.head = nn.Conv2d(chans[-1], 4, 3, padding=1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.dense(z).view(-1, self.c, self.grid, self.grid)
        out = self.head(self.ups(h))
        return torch.sigmoid(out[:, :3]), torch.sigmoid(out[:, 3:4])


class SwapAutoencoder(nn.Module):
    """Shared encoder, decoder ``a`` (patient) and decoder ``b`` (donor).

    A model file for de-identification carries only the encoder and decoder ``b``: decoder
    ``a`` can paint the patient's face and is kept only in the training checkpoint.
    """

    def __init__(self, arch: Architecture, with_patient_decoder: bool = True) -> None:
        super().__init__()
        self.arch = arch
        self.encoder = Encoder(arch)
        self.decoder_b = Decoder(arch)
        self.decoder_a = Decoder(arch) if with_patient_decoder else None

    def forward(self, x: torch.Tensor, identity: str) -> tuple[torch.Tensor, torch.Tensor]:
        dec = self.decoder_a if identity == "a" else self.decoder_b
        if dec is None:
            raise ValueError("this model has no patient decoder (a de-identification model)")
        return dec(self.encoder(x))

    def swap_state(self) -> dict[str, torch.Tensor]:
        """The weights needed to swap: encoder and donor decoder, nothing that paints A."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("decoder_a.")}


def to_tensor(batch, device: str = "cpu") -> torch.Tensor:
    """(N, S, S, 3) uint8 RGB -> (N, 3, S, S) float in 0..1."""
    t = torch.from_numpy(batch).to(device)
    return t.permute(0, 3, 1, 2).float().div_(255.0)
