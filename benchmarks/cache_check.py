"""What the image cache's check costs before a cached run: an image folder's files listed (symlinks
followed, each real file once) and fingerprinted (name, size, modification time, inode and change time of
each), on the CIFAR-10 JPEG copy's 60,000 files, against reading the cache it guards.

The folder is set up once (building the cache if it is missing, which decodes every image); then each
round times, for the training and test splits, the check alone (``list_images`` and ``fingerprint``, what
``ImageFolderDataModule`` does before it opens a cache) and the cache's read (``cached``, memory-mapped).
Medians of ``--repeats`` rounds. A first round after the files' metadata left the OS cache costs more;
``--cold`` drops the page cache first where that is allowed (root), to show it.

    python -m benchmarks.cache_check [--cifar DIR] [--repeats 5]
"""

import os
import subprocess
import time
from pathlib import Path

from benchmarks.common import machine, median, parser, table
from cnnlab.datamodules import ImageFolderDataModule
from cnnlab.datamodules.memory import read_cache


def check(dm: ImageFolderDataModule, split: str) -> tuple[Path, str, int]:
    """What the data module does before it opens a split's cache: list, stat and fingerprint."""
    dm._listed.pop(split, None)  # list the files again, as a new run does
    path, key = dm.cache_key(split)
    return path, key, len(dm._samples(split))


def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--cold", action="store_true", help="drop the OS page cache before the first round")
    p.set_defaults(repeats=5)
    args = p.parse_args()
    dm = ImageFolderDataModule(data_dir=args.cifar, num_workers=2)
    dm.setup("fit")  # builds the cache if it is missing
    dm.setup("test")
    if args.cold:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    splits = ("train", "test")
    times = {(kind, split): [] for kind in ("check", "read") for split in splits}
    counts = {}
    for _ in range(args.repeats):
        for split in splits:
            start = time.perf_counter()
            path, key, counts[split] = check(dm, split)
            times["check", split].append(time.perf_counter() - start)
            start = time.perf_counter()
            found = read_cache(path, key)
            times["read", split].append(time.perf_counter() - start)
            if found is None:
                raise SystemExit(f"the {split} cache {path} was not found under the key the check made")
    rows = [[split, f"{counts[split]:,}", f"{median(times['check', split]):.3f}",
             f"{median(times['read', split]):.3f}"] for split in splits]  # fmt: skip
    total = sum(median(times["check", split]) for split in splits)
    print(f"{args.cifar}: medians of {args.repeats} rounds; {machine()}; load {os.getloadavg()[0]:.1f}")
    print(table(["split", "files", "check s", "cache read s"], rows))
    print(f"the check before a cached run: {total:.3f} s for both splits")


if __name__ == "__main__":
    main()
