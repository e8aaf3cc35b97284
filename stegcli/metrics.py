"""Image quality and capacity figures: PSNR, SSIM and Reed-Solomon bits per pixel."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of a mean squared error measured on the [-1, 1] scale (peak-to-peak 2)."""
    return math.inf if mse == 0 else 10 * math.log10(4.0 / mse)


def psnr(stego: torch.Tensor, cover: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of (B, 3, H, W) images in [-1, 1]."""
    return psnr_from_mse(F.mse_loss(stego.float(), cover.float()).item())


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).float()


def ssim(stego: torch.Tensor, cover: torch.Tensor, band: int = 256) -> float:
    """Structural similarity (Wang et al. 2004) of (B, 3, H, W) images in [-1, 1].

    An 11×11 Gaussian window (σ = 1.5) per channel, on the 0..255 scale, averaged over
    channels and valid pixels. Images smaller than the window use a window their size.
    Large images are processed in horizontal bands of ``band`` output rows (each band reads
    the window's extra rows too), which gives the same mean with bounded memory.
    """
    size = min(11, stego.shape[-1], stego.shape[-2])
    window = _gaussian_window(size).to(stego.device).expand(3, 1, size, size)
    rows = stego.shape[-2] - size + 1
    total, count = 0.0, 0
    for top in range(0, rows, band):
        part = slice(top, min(rows, top + band) + size - 1)
        index = _ssim_map(stego[..., part, :], cover[..., part, :], window)
        total += index.double().sum().item()
        count += index.numel()
    return total / count


def _ssim_map(stego: torch.Tensor, cover: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """The SSIM index at every valid window position, shape (B, 3, H − s + 1, W − s + 1)."""
    x = (stego.float() + 1) * 127.5
    y = (cover.float() + 1) * 127.5
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=3)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )


def rs_bits_per_pixel(depth: int, accuracy: float) -> float:
    """SteganoGAN's Reed-Solomon bits per pixel, D · (2 · accuracy − 1).

    A Reed-Solomon code corrects about half as many symbol errors as it spends parity, so
    with a bit error rate p it keeps roughly a share 1 − 2p of the raw D bits per pixel.
    """
    return depth * (2 * accuracy - 1)
