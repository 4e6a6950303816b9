"""Random crop of a whole uint8 batch on the CPU: ``datamodules.augment.random_crop`` against the ways
it could be done instead, at the recipes' batch shapes.

* per image: torchvision's ``v2.RandomCrop`` applied to each image of the batch in a Python loop (what
  the per-image path does, in DataLoader workers);
* batched indexing: the batch indexed with per-image row and column index tensors
  (``x[batch, :, rows, cols]``), cnnlab's implementation until 2026-12-02;
* batched gather (cnnlab's): one ``gather`` over each image's flattened pixels.

Each variant crops the same batch; they alternate, ``--repeats`` times, and the medians of the time per
batch are reported.

Augmentation policies (RandAugment 2 ops at magnitude 9, TrivialAugmentWide, AutoAugment's CIFAR-10
policy) on CIFAR-10 training images (``--cifar``, decoded once into memory as uint8), batches of 128:

* per image (torchvision): the ``torchvision.transforms.v2`` policy on each image in a DataLoader with 2
  worker processes (one thread each), timed after the first batches, so the workers have started and
  filled their prefetch queue (which flatters them a little);
* batched (cnnlab's): ``datamodules.policies.apply_policy`` on the batch in the main process, as
  ``on_after_batch_transfer`` runs it; the batches are gathered from memory before the clock starts (the
  fast path's DataLoader does that with one indexing operation per batch), and timed over five passes.

    python -m benchmarks.augment [--repeats 3] [--part crop|policies|all] [--cifar FOLDER]
"""

import time

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from benchmarks.common import machine, median, parser, table
from cnnlab.datamodules import ImageFolderDataModule
from cnnlab.datamodules.augment import random_crop
from cnnlab.datamodules.policies import apply_policy, per_image_policy

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


POLICY_BATCH = 128
POLICY_BATCHES = 30  # timed batches per measurement
# the batched side goes over its batches this many times: 30 batches take it about 60 ms, too short to time
# steadily; both sides then take about a third of a second per measurement
POLICY_PASSES = 5
POLICY_IMAGES = 12_800  # training images decoded into memory


class PerImage(Dataset):
    """In-memory uint8 images, each through ``transform`` when a worker fetches it."""

    def __init__(self, images: torch.Tensor, transform):
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(self.images[index])


def per_image_images_per_s(images: torch.Tensor, policy: str) -> float:
    transform = v2.Compose(per_image_policy(policy))
    loader = DataLoader(PerImage(images, transform), POLICY_BATCH, shuffle=True, num_workers=2)
    batches = iter(loader)
    for _ in range(2):  # workers started, prefetch queue filled
        next(batches)
    start = time.perf_counter()
    for _ in range(POLICY_BATCHES):
        next(batches)
    return POLICY_BATCH * POLICY_BATCHES / (time.perf_counter() - start)


def batched_images_per_s(images: torch.Tensor, policy: str) -> float:
    # the batches as the fast path's DataLoader hands them over: gathered by one indexing operation each
    batches = images[torch.randperm(len(images))[: POLICY_BATCH * (POLICY_BATCHES + 1)]].split(POLICY_BATCH)
    apply_policy(batches[-1], policy)  # warm-up
    start = time.perf_counter()
    for _ in range(POLICY_PASSES):
        for batch in batches[:POLICY_BATCHES]:
            apply_policy(batch, policy)
    return POLICY_BATCH * POLICY_BATCHES * POLICY_PASSES / (time.perf_counter() - start)


def policies(args) -> None:
    dm = ImageFolderDataModule(data_dir=args.cifar)
    dm.setup("fit")
    # copied out of the memory-mapped cache: otherwise the first reads of each image page it in, and the
    # side that happens to touch an image first pays for it (the batched side by up to 1.7x here)
    images = dm.train_set.dataset.images[:POLICY_IMAGES].clone()
    rows = []
    for policy in ("randaugment", "trivialaugment", "autoaugment"):
        rates = {"per image (torchvision, 2 workers)": [], "batched (cnnlab)": []}
        for _ in range(args.repeats):
            rates["per image (torchvision, 2 workers)"].append(per_image_images_per_s(images, policy))
            rates["batched (cnnlab)"].append(batched_images_per_s(images, policy))
        theirs = median(rates["per image (torchvision, 2 workers)"])
        for variant, values in rates.items():
            rows.append([policy, variant, f"{median(values):,.0f}", f"{median(values) / theirs:.1f}"])
    print(f"\npolicies on CIFAR-10 batches of {POLICY_BATCH}, median of {args.repeats}; {machine()}")
    print(f"1-minute loadavg before and after: {args.load} / {loadavg()}\n")
    print(table(["policy", "variant", "images / s", "x torchvision's rate"], rows))


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--part", choices=("all", "crop", "policies"), default="all")
    args = p.parse_args()
    args.load = loadavg()  # the time depends on what else runs on the cores
    if args.part in ("all", "crop"):
        crops(args)
    if args.part in ("all", "policies"):
        policies(args)


def crops(args) -> None:
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
