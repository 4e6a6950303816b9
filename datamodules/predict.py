"""The user's own image files for ``cnnlab predict``: any size and mode, shaped like the training data.

Each image is converted to the training data's channels (grayscale to RGB for an RGB model, RGB to
grayscale for a 1-channel model, alpha dropped) and resized to the training image size, as
``ImageFolderDataModule`` resizes; the data module then normalises the batch exactly as it normalises
training batches. Files that cannot be read as images are reported on stderr and skipped.
"""

import sys
from pathlib import Path

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
            found = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path)))
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
        try:
            with Image.open(path) as img:
                image = _to_mode(img, self.mode)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
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


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    img.load()  # decodes the whole file: truncated or corrupt data fails here, not later
    return img.convert(mode)  # drops alpha, expands palettes, grayscale <-> RGB
