"""Random crop of a whole uint8 batch on the CPU: ``datamodules.augment.random_crop`` against the ways
it could be done instead, at the recipes' batch shapes.

* per image: torchvision's ``v2.RandomCrop`` applied to each image of the batch in a Python loop (what
  the per-image path does, in DataLoader workers);
* batched indexing: the batch indexed with per-image row and column index tensors
  (``x[batch, :, rows, cols]``), cnnlab's implementation until 2026-12-02;
* batched gather (cnnlab's): one ``gather`` over each image's flattened pixels.

Each variant crops the same batch; they alternate, ``--repeats`` times, and the medians of the time per
batch are reported.

    python -m benchmarks.augment [--repeats 3]
"""

import time

import torch
from torchvision.transforms import v2

from benchmarks.common import machine, median, parser, table
from cnnlab.datamodules.augment import random_crop

# (recipe, batch shape, padding, mode)
CASES = [
    ("mnist_speedrun (translate 1)", (256, 1, 28, 28), 1, "zeros"),
    ("CIFAR-10, batch 64", (64, 3, 32, 32), 4, "zeros"),
    ("cifar10_speedrun", (512, 3, 32, 32), 2, "reflect"),
]


def crop_by_indexing(x: torch.Tensor, padding: int, mode: str) -> torch.Tensor:
    """The batched-indexing crop as cnnlab had it before the gather."""
    b, _, h, w = x.shape
    dy = torch.randint(0, 2 * padding + 1, (b,))
    dx = torch.randint(0, 2 * padding + 1, (b,))

    def shifted(n, offsets):
        pos = offsets[:, None] + torch.arange(n) - padding
        if mode == "reflect":
            pos = pos.abs()
            return torch.where(pos >= n, 2 * (n - 1) - pos, pos), None
        return pos.clamp(0, n - 1), (pos >= 0) & (pos < n)

    (rows, row_ok), (cols, col_ok) = shifted(h, dy), shifted(w, dx)
    out = x[torch.arange(b)[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if row_ok is not None:
        out = out * (row_ok[:, :, None] & col_ok[:, None, :])[:, None].to(out.dtype)
    return out.contiguous()


def per_image(x: torch.Tensor, padding: int, mode: str) -> torch.Tensor:
    crop = v2.RandomCrop(x.shape[-1], padding=padding, padding_mode="constant" if mode == "zeros" else mode)
    return torch.stack([crop(image) for image in x])


def ms_per_batch(fn, x: torch.Tensor, padding: int, mode: str, batches: int) -> float:
    fn(x, padding, mode)  # warm-up
    start = time.perf_counter()
    for _ in range(batches):
        fn(x, padding, mode)
    return (time.perf_counter() - start) / batches * 1e3


def main() -> None:
    args = parser(__doc__).parse_args()
    variants = {"per image (torchvision)": per_image, "batched indexing": crop_by_indexing,
                "batched gather (cnnlab)": random_crop}  # fmt: skip
    rows = []
    for name, shape, padding, mode in CASES:
        torch.manual_seed(0)
        x = torch.randint(0, 256, shape, dtype=torch.uint8)
        times = {v: [] for v in variants}
        for _ in range(args.repeats):
            for v, fn in variants.items():
                times[v].append(ms_per_batch(fn, x, padding, mode, 5 if fn is per_image else 50))
        ours = median(times["batched gather (cnnlab)"])
        for v in variants:
            t = median(times[v])
            rows.append([name, f"{padding} {mode}", v, f"{t:.2f}", f"{t / ours:.2f}"])
    print(f"random crop of one uint8 batch, median of {args.repeats}; {machine()}\n")
    print(table(["batch", "padding", "variant", "ms / batch", "x cnnlab's time"], rows))


if __name__ == "__main__":
    main()
