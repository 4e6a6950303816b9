"""NCHW against channels-last (NHWC) training speed of the zoo on the CPU, in fp32.

What ``ImageClassifier(channels_last=True)``, cnnlab's default, is worth per architecture: one training
step (forward, backward, fused Adam) on a batch of 64 random images of the recipe's shape (3x32x32, or
1x28x28 for the MNIST models), after two warm-up steps; the two layouts alternate, ``--repeats`` times
each, and the medians are reported.

    python -m benchmarks.memory_format [--repeats 3] [--arch simplecnn resnet20 ...]
"""

import time

import torch
import torch.nn.functional as F

from benchmarks.common import machine, median, parser, table
from cnnlab.models import get_model

BATCH = 64
# (architecture, input channels, side, steps per measurement: about a second or more each on 2 cores)
ARCHS = [
    ("simplecnn", 3, 32, 30),
    ("lenet5", 1, 28, 40),
    ("mnist_cnn", 1, 28, 20),
    ("fastcnn", 1, 28, 10),
    ("airbench", 3, 32, 5),
    ("resnet20", 3, 32, 5),
    ("mobilenetv2", 3, 32, 2),
    ("alexnet", 3, 32, 5),
    ("vgg11_bn", 3, 32, 3),
    ("resnet18", 3, 32, 2),
]


def images_per_second(arch: str, channels: int, side: int, steps: int, channels_last: bool) -> float:
    torch.manual_seed(0)
    model = get_model(arch, num_classes=10, in_channels=channels, image_size=side)
    images, labels = torch.randn(BATCH, channels, side, side), torch.randint(0, 10, (BATCH,))
    if channels_last:  # as ImageClassifier does: weights and inputs in NHWC
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

    def step():
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(2):  # warm-up: oneDNN picks and caches its kernels
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return BATCH * steps / (time.perf_counter() - start)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--arch", nargs="*", help="architectures to measure (default: a spread of the zoo)")
    args = p.parse_args()
    rows = []
    for arch, channels, side, steps in ARCHS:
        if args.arch and arch not in args.arch:
            continue
        rates = {False: [], True: []}
        for _ in range(args.repeats):
            for channels_last in (False, True):
                rates[channels_last].append(images_per_second(arch, channels, side, steps, channels_last))
        nchw, nhwc = median(rates[False]), median(rates[True])
        rows.append([arch, f"{channels}x{side}x{side}", nchw, nhwc, f"{nhwc / nchw:.2f}"])
    print(f"fp32 training steps, batch {BATCH}, median of {args.repeats}; {machine()}\n")
    print(table(["arch", "input", "NCHW images / s", "channels-last images / s", "ratio"], rows))


if __name__ == "__main__":
    main()
