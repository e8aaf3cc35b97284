"""Reading images into tensors, and turning tensors back into 8-bit pixels.

Every command reads images through :func:`load_image`: any format Pillow reads, EXIF
orientation applied, converted to 8-bit RGB, with each conversion reported so that nothing
changes silently. Pillow's decompression-bomb guard stays on, and even its warning level is
treated as an error.

Networks see images as float tensors (B, 3, H, W) in [-1, 1]; pixel value v in 0..255 maps
to v / 127.5 − 1.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from stegcli.errors import ImageError

# Modes whose samples are wider than 8 bits; Pillow's own conversion to RGB clips them.
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


@dataclass
class LoadedImage:
    """An image ready for the networks.

    pixels: (H, W, 3) uint8 RGB array, EXIF orientation applied.
    conversions: what was changed to get there, in words (empty when nothing was).
    alpha: (H, W) uint8 alpha channel, or None; the networks never see it.
    icc_profile: the embedded colour profile, or None, kept so a stego image can carry it.
    """

    path: Path
    pixels: np.ndarray
    original_mode: str
    conversions: list[str] = field(default_factory=list)
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    def tensor(self) -> torch.Tensor:
        """The image as a (1, 3, H, W) float32 tensor in [-1, 1]."""
        return pixels_to_tensor(self.pixels)


def load_image(path: str | Path) -> LoadedImage:
    """Read any image Pillow understands as 8-bit RGB.

    Raises ImageError for a missing or unreadable file, a non-image, a truncated image, or
    one whose pixel count trips Pillow's decompression-bomb guard.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image {str(path)!r} does not exist or is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return _to_rgb(path, image)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageError(
            f"{str(path)!r} claims more than {Image.MAX_IMAGE_PIXELS:,} pixels, the limit "
            "that guards against decompression bombs; use a smaller image"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(f"{str(path)!r} is not an image format Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"could not read image {str(path)!r} ({exc}); is it truncated?") from None


def _to_rgb(path: Path, image: Image.Image) -> LoadedImage:
    conversions = []
    mode = image.mode
    icc_profile = image.info.get("icc_profile") or None
    orientation = image.getexif().get(0x0112, 1)
    image = ImageOps.exif_transpose(image)
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        conversions.append(f"turned upright as its EXIF orientation ({orientation}) asks")

    if image.mode in _WIDE_MODES:
        image = _reduce_to_8_bits(image)
        conversions.append(f"{mode} samples reduced to 8 bits")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        conversions.append("palette colours expanded to RGB")
    alpha = None
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(image.split()[-1], dtype=np.uint8).copy()
        conversions.append("alpha channel ignored")
    if image.mode in ("L", "1", "LA", "La"):
        conversions.append("grayscale copied into three RGB channels")
    elif image.mode not in ("RGB", "RGBA"):
        conversions.append(f"{image.mode} colours converted to RGB")
    if image.mode != "RGB":
        image = image.convert("RGB")
    pixels = np.asarray(image, dtype=np.uint8).copy()
    return LoadedImage(path, pixels, mode, conversions, alpha, icc_profile)


def _reduce_to_8_bits(image: Image.Image) -> Image.Image:
    """16-bit or 32-bit grayscale to 8-bit grayscale, scaled rather than clipped."""
    values = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
    if image.mode == "F":
        top = 1.0 if values.max() <= 1.0 else top
    scaled = np.clip(np.rint(values * 255.0 / top), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def pixels_to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 pixels to a (1, 3, H, W) float32 tensor in [-1, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).unsqueeze(0)
    return tensor.float() / 127.5 - 1.0


def tensor_to_pixels(image: torch.Tensor) -> np.ndarray:
    """A (1, 3, H, W) tensor in [-1, 1] to (H, W, 3) uint8 pixels, clamped and rounded."""
    values = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round()
    return values[0].permute(1, 2, 0).to(torch.uint8).cpu().numpy()


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Clamp (B, 3, H, W) images to [-1, 1] and round them to 8-bit pixel levels.

    The result is exactly what a PNG of the image holds when read back.
    """
    return ((image.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1.0
