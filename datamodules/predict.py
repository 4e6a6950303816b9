"""The user's own image files for ``cnnlab predict``: any size and mode, shaped like the training data.

Each image is converted to the training data's channels (grayscale to RGB for an RGB model, RGB to
grayscale for a 1-channel model, alpha dropped) and resized to the training image size, as
``ImageFolderDataModule`` resizes; the data module then normalises the batch exactly as it normalises
training batches. Files that cannot be read as images are reported on stderr and skipped.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from .errors import DataError


def find_files(sources: str | list[str]) -> list[Path]:
    """The files named by ``sources``: files as given, folders searched recursively (hidden files and
    folders left out), in sorted order within each folder."""
    files = []
    for source in [sources] if isinstance(sources, (str, Path)) else sources:
        path = Path(source).expanduser()
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            entries = sorted(p for p in path.rglob("*") if not _hidden(p.relative_to(path)))
            found = [p for p in entries if p.is_file()]
            for other in entries:  # a broken link, a FIFO, a socket: named, not read (reading a FIFO blocks)
                if not other.is_file() and not other.is_dir():
                    kind = "a broken link" if other.is_symlink() else "not a regular file"
                    print(f"cnnlab: skipping {other}: {kind}", file=sys.stderr)
            if not found:
                raise DataError(f"no files in {path.resolve()}; --data.predict_dir needs image files")
            files.extend(found)
        else:
            raise DataError(f"{path} does not exist; pass image files or folders to --data.predict_dir")
    return files


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


class PredictImages(Dataset):
    """``(uint8 image tensor, path)`` per file, or ``None`` for a file that is not a readable image."""

    def __init__(self, files: list[Path], channels: int, image_size: int):
        self.files, self.channels, self.image_size = files, channels, image_size
        self.mode = "L" if channels == 1 else "RGB"
        self.resize = v2.Resize((image_size, image_size), antialias=True)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        path = self.files[index]
        image, reason = readable_image(path, self.mode)
        if image is None:
            print(f"cnnlab: skipping {path}: not a readable image ({reason})", file=sys.stderr)
            return None
        return v2.functional.pil_to_tensor(self.resize(image)), str(path)

    def collate(self, items: list) -> tuple[torch.Tensor, list[str]]:
        """Stack the readable images of a batch; skipped files (``None``) are dropped."""
        items = [item for item in items if item is not None]
        if not items:
            size = self.image_size
            return torch.empty(0, self.channels, size, size, dtype=torch.uint8), []
        images, paths = zip(*items, strict=True)
        return torch.stack(images), list(paths)


def convert_image(img: Image.Image, mode: str) -> Image.Image:
    """``img`` decoded whole and converted to ``mode`` (``L`` or ``RGB``): alpha dropped, palettes
    expanded, grayscale <-> RGB. 16-bit and 32-bit integer images are scaled to 8 bits (PIL's own
    conversion would clip them: a 16-bit PNG would turn white)."""
    img.load()  # decodes the whole file: truncated or corrupt data fails here, not later
    if img.mode.startswith("I") or img.mode == "F":
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.clip(values * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")
    return img.convert(mode)


def readable_image(path, mode: str) -> tuple[Image.Image | None, str]:
    """The image at ``path`` in ``mode``, or None and why it could not be read."""
    try:
        with Image.open(path) as img:
            return convert_image(img, mode), ""
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        return None, (str(err).strip().splitlines() or [type(err).__name__])[0]
