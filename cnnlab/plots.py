"""Matplotlib figures of a classifier's results, rendered off-screen (Agg) to image arrays.

Used by the TensorBoard pictures (``cnnlab.pictures``) and the evaluation report (``cnnlab.evaluation``).
Figures are made with ``matplotlib.figure.Figure`` directly, not ``pyplot``, so nothing global is touched
and no window can open.
"""

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

# Counts are written in the cells up to this many classes; beyond, the cells are too small to read.
MAX_ANNOTATED_CLASSES = 30


def to_array(fig: Figure) -> np.ndarray:
    """The rendered figure as an HxWx3 uint8 array."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(fig: Figure, path) -> None:
    FigureCanvasAgg(fig).print_png(str(path))


def confusion_matrix_figure(matrix: torch.Tensor, class_names: Sequence[str], title: str = "") -> Figure:
    """Counts of (true class, predicted class), darker for more, each count written in its cell."""
    matrix = matrix.detach().cpu().long()
    n = len(class_names)
    side = min(max(5.0, 0.55 * n + 2.5), 40.0)
    fig = Figure(figsize=(side + 1.0, side), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    # Colour by share of the true class, so small classes' mistakes show as clearly as large ones'.
    rows = matrix.sum(dim=1, keepdim=True).clamp_min(1)
    shares = (matrix / rows).numpy()
    # A power scale, so that mistakes of 1% of a class are visible beside the dark diagonal.
    image = ax.imshow(shares, cmap="Blues", norm=PowerNorm(gamma=0.3, vmin=0.0, vmax=1.0))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class (power scale)")
    ax.set_xticks(range(n), labels=list(class_names), rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), labels=list(class_names))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(title)
    if n <= MAX_ANNOTATED_CLASSES:
        size = 10 if n <= 12 else 7
        for i in range(n):
            for j in range(n):
                count = int(matrix[i, j])
                colour = "white" if shares[i, j] > 0.3 else ("black" if count else "silver")
                ax.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=size)
    return fig


def bar_figure(
    values: Sequence[float], class_names: Sequence[str], title: str, xlabel: str, overall: float | None = None
) -> Figure:
    """One horizontal bar per class, its value written at the bar's end (values between 0 and 1), and
    ``overall`` as a dashed line. When every value is high the axis starts above 0 (said on the axis), so
    that 97% and 99% look different."""
    n = len(class_names)
    fig = Figure(figsize=(7.5, min(max(3.0, 0.35 * n + 1.4), 40.0)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    positions = np.arange(n)
    low = max(0.0, np.floor((min(values, default=0.0) - 0.02) * 10) / 10)
    ax.barh(positions, values, color="tab:blue")
    ax.set_yticks(positions, labels=list(class_names))
    ax.invert_yaxis()  # first class on top, as in the report
    span = 1.0 - low
    ax.set_xlim(low, 1.0 + 0.13 * span)
    ax.set_xlabel(xlabel if low == 0 else f"{xlabel} (axis starts at {low:.1f})")
    ax.set_title(title)
    for y, value in zip(positions, values, strict=True):
        ax.text(
            max(value, low) + 0.01 * span,
            y,
            f"{value:.3f}",
            va="center",
            fontsize=9,
            zorder=3,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
        )
    if overall is not None:
        ax.axvline(
            overall, color="tab:red", linestyle="--", linewidth=1.2, zorder=2, label=f"overall {overall:.3f}"
        )
        ax.legend(loc="lower right", fontsize=9, framealpha=0.9)
    return fig


def image_grid_figure(images: torch.Tensor, titles: Sequence[str], columns: int = 4) -> Figure:
    """Images (N x C x H x W, values in 0..1) in a grid, each with its title above it."""
    n = len(images)
    columns = max(1, min(columns, n))
    rows = max(1, -(-n // columns))
    fig = Figure(figsize=(2.3 * columns, 2.6 * rows), dpi=100)
    # Fixed spacing with room for two title lines: constrained layout doubles the drawing time here.
    top = 1 - 0.5 / (2.6 * rows)
    spacing = {"left": 0.01, "right": 0.99, "bottom": 0.01, "top": top, "hspace": 0.5, "wspace": 0.05}
    axes = fig.subplots(rows, columns, squeeze=False, gridspec_kw=spacing)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k >= n:
            continue
        image = images[k].detach().cpu().float().clamp(0, 1)
        if image.shape[0] == 1:
            ax.imshow(image[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(image[:3].permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(titles[k], fontsize=9)
    return fig
