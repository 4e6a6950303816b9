"""An image folder packed into one compressed file, and unpacked back byte for byte.

For carrying a data set to a machine that cannot download it under a size limit: the shared CIFAR-10
JPEG copy is 60,000 files (52.7 MiB of JPEG bytes, 236 MB on disk); packed, 17.6 MiB, because every
file starts with the same 623 bytes of JPEG tables, which compression stores once. Unpacking writes the
same files with the same bytes, so both sides of a comparison decode the same pixels.

    python -m benchmarks.image_pack pack ../shared/data/cifar10-jpeg .pack/cifar10-jpeg.zpack
    python -m benchmarks.image_pack unpack .pack/cifar10-jpeg.zpack /tmp/cifar10-jpeg
"""

import argparse
import json
import os
import zlib
from pathlib import Path

MAGIC = b"cnnlab-image-pack-1\n"


def pack(folder: Path, target: Path) -> int:
    """Write every file under ``folder`` (hidden ones, like the fast path's cache, left out) into
    ``target``; returns the number of files."""
    names = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        names += [os.path.relpath(os.path.join(root, f), folder) for f in files if not f.startswith(".")]
    names.sort()
    if not names:
        raise SystemExit(f"no files under {folder}")
    blobs = [(folder / name).read_bytes() for name in names]
    index = json.dumps({"names": names, "sizes": [len(b) for b in blobs]}).encode()
    body = zlib.compress(len(index).to_bytes(8, "little") + index + b"".join(blobs), 6)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(MAGIC + body)
    return len(names)


def unpack(source: Path, folder: Path) -> int:
    """Recreate the packed files under ``folder``; returns the number of files."""
    data = source.read_bytes()
    if not data.startswith(MAGIC):
        raise SystemExit(f"{source} is not an image pack (made by `python -m benchmarks.image_pack pack`)")
    body = zlib.decompress(data[len(MAGIC) :])
    length = int.from_bytes(body[:8], "little")
    index = json.loads(body[8 : 8 + length])
    offset = 8 + length
    for name, size in zip(index["names"], index["sizes"], strict=True):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body[offset : offset + size])
        offset += size
    return len(index["names"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["pack", "unpack"])
    p.add_argument("source", type=Path)
    p.add_argument("target", type=Path)
    args = p.parse_args()
    if not args.source.exists():
        raise SystemExit(f"{args.source} does not exist")
    count = (pack if args.action == "pack" else unpack)(args.source, args.target)
    size = (args.target if args.action == "pack" else args.source).stat().st_size
    print(f"{args.action}ed {count:,} files; the pack is {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
