"""A small StyleGAN2-like GAN: the networks of the ``"gan"`` texture prior (:mod:`.gan_prior`).

Generator: mapping MLP ``z (Z) -> w (W)``, then a constant 4x4 block and style-modulated,
demodulated 3x3 convolutions doubling the resolution up to ``GANConfig.resolution``, with skip
``toRGB`` outputs (StyleGAN2's "skip" generator, no noise inputs, so decoding is deterministic).
It draws a normalised **residual** (zero mean, about unit RMS): the prior adds it, scaled and made
orthogonal to the PCA subspace, to a PCA texture (see :mod:`ganfit_core.texture.gan_prior`).

Discriminator: residual blocks with average-pool downsampling, minibatch standard deviation, and a
linear head. All layers use equalised learning rates (weights scaled at run time).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GANConfig", "Generator", "Discriminator", "w_statistics"]


@dataclass(frozen=True)
class GANConfig:
    """Architecture of the texture GAN (JSON-serialisable with :meth:`to_dict` / :meth:`from_dict`).

    Attributes:
        resolution: side of the generated residual in texels (a power of two >= 8).
        z_dim, w_dim: latent sizes.
        mapping_layers: depth of the mapping MLP.
        channel_base, channel_max: channels at resolution r are ``min(channel_max, channel_base // r)``.
        mapping_lr_mul: learning-rate multiplier of the mapping network (StyleGAN uses 0.01).
    """

    resolution: int = 64
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 4
    channel_base: int = 4096
    channel_max: int = 128
    mapping_lr_mul: float = 0.01

    def __post_init__(self) -> None:
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise ValueError(f"resolution: expected a power of two >= 8, got {self.resolution}")

    def channels(self, res: int) -> int:
        return max(1, min(self.channel_max, self.channel_base // res))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GANConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


# --------------------------------------------------------------------------------------------
# Layers (equalised learning rate)


class EqLinear(nn.Module):
    """Linear layer with run-time weight scaling ``lr_mul / sqrt(in)``; optional leaky ReLU (x sqrt 2)."""

    def __init__(self, cin: int, cout: int, *, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(cin)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(out, 0.2) * math.sqrt(2.0) if self.activate else out


class EqConv(nn.Module):
    """3x3 (or 1x1) convolution with equalised learning rate and optional leaky ReLU (x sqrt 2)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, *, activate: bool = True,
                 bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale = 1.0 / math.sqrt(cin * kernel * kernel)
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.weight.shape[-1] // 2)
        return F.leaky_relu(out, 0.2) * math.sqrt(2.0) if self.activate else out


class ModulatedConv(nn.Module):
    """Style-modulated convolution (StyleGAN2): per-sample weights ``W * s(w)``, demodulated."""

    def __init__(self, cin: int, cout: int, w_dim: int, kernel: int = 3, *, demodulate: bool = True,
                 activate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.affine = EqLinear(w_dim, cin, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(cin * kernel * kernel)
        self.demodulate = demodulate
        self.activate = activate
        if not demodulate:  # a toRGB layer: start with small outputs, so G starts at the mean texture
            with torch.no_grad():
                self.weight.mul_(0.1)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # StyleGAN2's non-fused form (scale the input, shared-weight conv, scale the output): the
        # same maths as per-sample weights, and much faster on CPU than a grouped convolution.
        styles = self.affine(w)  # (B, Cin)
        weight = self.weight * self.scale  # (Cout, Cin, k, k)
        out = F.conv2d(x * styles[:, :, None, None], weight, padding=weight.shape[-1] // 2)
        if self.demodulate:
            sq = weight.pow(2).sum(dim=(2, 3))  # (Cout, Cin)
            demod = torch.rsqrt(styles.pow(2) @ sq.T + 1e-8)  # (B, Cout)
            out = out * demod[:, :, None, None]
        out = out + self.bias.view(1, -1, 1, 1)
        return F.leaky_relu(out, 0.2) * math.sqrt(2.0) if self.activate else out


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------------------------
# Networks


class Generator(nn.Module):
    """``z (B, Z)`` -> residual texture ``(B, 3, r, r)`` (channels first, unbounded, around 0)."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        layers = [EqLinear(config.z_dim if i == 0 else config.w_dim, config.w_dim,
                           lr_mul=config.mapping_lr_mul, activate=True) for i in range(config.mapping_layers)]
        self.mapping = nn.Sequential(*layers)
        c4 = config.channels(4)
        self.const = nn.Parameter(torch.randn(1, c4, 4, 4))
        self.conv4 = ModulatedConv(c4, c4, config.w_dim)
        self.rgb4 = ModulatedConv(c4, 3, config.w_dim, kernel=1, demodulate=False, activate=False)
        self.blocks = nn.ModuleList()
        self.rgbs = nn.ModuleList()
        res, cin = 8, c4
        while res <= config.resolution:
            cout = config.channels(res)
            self.blocks.append(nn.ModuleList([ModulatedConv(cin, cout, config.w_dim),
                                              ModulatedConv(cout, cout, config.w_dim)]))
            self.rgbs.append(ModulatedConv(cout, 3, config.w_dim, kernel=1, demodulate=False, activate=False))
            res, cin = res * 2, cout

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, Z) -> w (B, W); z is normalised to unit RMS first."""
        z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        return self.mapping(z)

    def synthesis(self, w: torch.Tensor) -> torch.Tensor:
        """w (B, W) -> residual (B, 3, r, r)."""
        x = self.const.expand(w.shape[0], -1, -1, -1)
        x = self.conv4(x, w)
        rgb = self.rgb4(x, w)
        for (conv_a, conv_b), to_rgb in zip(self.blocks, self.rgbs, strict=True):
            x = conv_b(conv_a(_upsample(x), w), w)
            rgb = _upsample(rgb) + to_rgb(x, w)
        return rgb

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.map(z))


class Discriminator(nn.Module):
    """Normalised residual ``(B, 3, r, r)`` (zero mean, about unit RMS) -> realness logit ``(B,)``."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        res = config.resolution
        self.from_rgb = EqConv(3, config.channels(res), kernel=1)
        self.blocks = nn.ModuleList()
        while res > 4:
            cin, cout = config.channels(res), config.channels(res // 2)
            self.blocks.append(nn.ModuleDict({
                "conv_a": EqConv(cin, cin),
                "conv_b": EqConv(cin, cout),
                "skip": EqConv(cin, cout, kernel=1, activate=False, bias=False),
            }))
            res //= 2
        c4 = config.channels(4)
        self.final_conv = EqConv(c4 + 1, c4)
        self.fc = EqLinear(c4 * 16, c4, activate=True)
        self.out = EqLinear(c4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.from_rgb(x)
        for block in self.blocks:
            skip = block["skip"](F.avg_pool2d(x, 2))
            x = F.avg_pool2d(block["conv_b"](block["conv_a"](x)), 2)
            x = (x + skip) / math.sqrt(2.0)
        group = min(4, x.shape[0])
        while x.shape[0] % group:
            group -= 1
        y = x.reshape(group, -1, *x.shape[1:])
        std = torch.sqrt(y.var(dim=0, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))  # (B / group,)
        std = std.reshape(-1, 1, 1, 1).repeat(group, 1, x.shape[2], x.shape[3])
        x = self.final_conv(torch.cat([x, std], dim=1))
        return self.out(self.fc(x.flatten(1))).squeeze(1)


@torch.no_grad()
def w_statistics(
    generator: Generator, *, samples: int = 4096, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (W,) of the mapping network's output over seeded z samples."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, generator.config.z_dim, generator=gen)
    w = generator.map(z.to(next(generator.parameters()).device))
    return w.mean(0), w.std(0)
