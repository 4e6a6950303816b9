"""The model card: one row per layer in execution order (``cnnlab summary``, and ``model_summary.md`` in
every run's folder).

For every leaf module (and every other module that runs operations of its own, such as
``MultiheadAttention``) the table gives its output shape, parameters, multiply-accumulates (MACs) for
one image, and the receptive field of its output: its size ``r`` in input pixels and its jump ``j``
(the distance in input pixels between neighbouring output positions), computed through every
convolution and pooling operation as ``r_out = r_in + (k - 1) * j_in`` and ``j_out = j_in * s`` (``k``
the kernel size with dilation, ``s`` the stride). How the rest is treated:

* branches (residual additions, concatenations, any operation with several inputs) take the largest
  receptive field and jump of their inputs;
* global pooling, adaptive pooling to 1x1 and flattening the spatial dimensions (a ``Flatten`` before a
  linear layer, a ViT's patch tokens) act as one pooling window over the whole feature map: their
  output sees the whole (padded) image, and from there on the field stays as it is and no jump is shown
  (a ViT's tokens count as global from the patch embedding on, one step before attention mixes them);
* the field is the theoretical one: in deep networks it outgrows the image (then every output sees
  the whole image, the border through padding);
* padding changes where a field lies, not its size; non-square kernels count their larger side.

MACs are counted by ``torch.utils.flop_counter`` (FLOPs / 2: convolutions, matrix products,
attention); element-wise operations (activations, normalisation, additions) count as zero. The rows add
up to the total.
"""

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.models import get_model
from cnnlab.tables import markdown_table

aten = torch.ops.aten
CONVOLUTIONS = {aten.convolution.default}
POOLS = {aten.max_pool2d_with_indices.default, aten.avg_pool2d.default, aten.max_pool2d.default}
ADAPTIVE_POOLS = {aten._adaptive_avg_pool2d.default, aten.adaptive_max_pool2d.default}


@dataclass
class Layer:
    name: str
    type: str
    shape: tuple[int, ...]
    params: int
    macs: int
    rf: int | None  # receptive field size in input pixels; None where no image position flows in
    jump: int | None


@dataclass
class Summary:
    arch: str
    input_shape: tuple[int, ...]
    layers: list[Layer] = field(default_factory=list)
    params: int = 0
    trainable: int = 0
    macs: int = 0
    rf: int | None = None
    jump: int | None = None


# -- receptive field ------------------------------------------------------------------------------------
class ReceptiveField(TorchDispatchMode):
    """Follows the receptive field (size, jump) of every tensor computed from the input image.

    Works on ATen operations, so functional code inside ``forward`` (residual additions, pooling by
    ``x.mean``, ``torch.flatten``) counts as much as modules do.
    """

    def __init__(self):
        super().__init__()
        # id -> (tensor, r, j); the tensor is kept alive so its id is not reused during the pass.
        self.fields: dict[int, tuple[torch.Tensor, int, int]] = {}

    def set(self, tensor: torch.Tensor, r: int, j: int) -> None:
        self.fields[id(tensor)] = (tensor, r, j)

    def get(self, tensor) -> tuple[int, int] | None:
        entry = self.fields.get(id(tensor))
        return entry[1:] if entry is not None and entry[0] is tensor else None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor) and self.get(t)]
        if inputs:
            r = max(self.get(t)[0] for t in inputs)
            j = max(self.get(t)[1] for t in inputs)
            outputs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
            r, j = self._through(func, args, inputs[0], outputs[0] if outputs else None, r, j)
            for t in outputs:
                self.set(t, r, j)
        return out

    @staticmethod
    def _through(func, args, x: torch.Tensor, out: torch.Tensor | None, r: int, j: int) -> tuple[int, int]:
        if j == 0:  # the spatial layout is gone (flattened, pooled away): nothing grows any more
            return r, 0
        if func in CONVOLUTIONS and x.ndim == 4:
            weight, stride, dilation = args[1], args[3], args[5]
            k = max((d * (size - 1) + 1) for size, d in zip(weight.shape[2:], dilation, strict=False))
            return r + (k - 1) * j, j * max(stride)
        if func in POOLS and x.ndim == 4:
            kernel = _pair(args[1])
            stride = _pair(args[2]) if len(args) > 2 and args[2] else kernel
            dilation = _pair(args[4]) if func != aten.avg_pool2d.default and len(args) > 4 else (1, 1)
            k = max(d * (size - 1) + 1 for size, d in zip(kernel, dilation, strict=True))
            return r + (k - 1) * j, j * max(stride)
        if func in ADAPTIVE_POOLS and x.ndim == 4:
            side, target = max(x.shape[2:]), max(_pair(args[1]))
            r, j = r + (math.ceil(side / target) - 1) * j, j * (side // target)
            return (r, 0) if target == 1 else (r, j)
        if x.ndim == 4 and out is not None and _merges_space(x, out):
            side = max(x.shape[2:])  # a window over the whole feature map
            return r + (side - 1) * j, 0
        return r, j


def _pair(value) -> tuple[int, int]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    return (values[0], values[-1])


def _merges_space(x: torch.Tensor, out: torch.Tensor) -> bool:
    """``out`` mixes or folds all positions of the feature map ``x`` (global pooling, flattening)."""
    if max(x.shape[2:]) <= 1:
        return False
    return out.ndim < 4 or (out.ndim == 4 and max(out.shape[2:]) == 1 and out.shape[1] == x.shape[1])


# -- the pass -------------------------------------------------------------------------------------------
def summarize(model: nn.Module, input_shape: tuple[int, ...], arch: str = "") -> Summary:
    """Run one zero image of ``input_shape`` (C, H, W) through ``model`` and describe every layer.

    Runs in eval mode with autograd on (so PyTorch's fused inference paths, which skip submodules, stay
    off); the model's training flag is restored afterwards.
    """
    summary = Summary(arch or type(model).__name__, tuple(input_shape))
    names = {id(m): name for name, m in model.named_modules()}
    counted: set[int] = set()  # modules whose parameters are already in a row
    stack: list[list] = []  # [module, MACs at entry, MACs of its children]
    called: set[int] = set()
    field_mode = ReceptiveField()
    counter = FlopCounterMode(display=False)

    def macs_now() -> int:
        return counter.get_total_flops() // 2

    def pre_hook(module, args):
        called.add(id(module))
        stack.append([module, macs_now(), 0])

    def post_hook(module, args, output):
        _, start, children = stack.pop()
        inclusive = macs_now() - start
        if stack:
            stack[-1][2] += inclusive
        leaf = not any(True for _ in module.children())
        own = inclusive if leaf else inclusive - children
        params = _row_params(module, counted, called, leaf)
        if leaf or own or params:
            out = next((t for t in tree_leaves(output) if isinstance(t, torch.Tensor)), None)
            rf = field_mode.get(out) if out is not None else None
            summary.layers.append(
                Layer(
                    names.get(id(module)) or "(model)",
                    type(module).__name__,
                    tuple(out.shape[1:]) if out is not None else (),
                    params,
                    own,
                    rf[0] if rf else None,
                    rf[1] if rf and rf[1] else None,
                )
            )

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        x = torch.zeros(1, *input_shape, device=param.device if param is not None else "cpu")
        with torch.enable_grad(), counter, field_mode:
            field_mode.set(x, 1, 1)
            out = model(x)
            final = field_mode.get(out)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    summary.params = sum(p.numel() for p in model.parameters())
    summary.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    summary.macs = macs_now()
    if final:
        summary.rf, summary.jump = final[0], final[1] or None
    return summary


def _row_params(module: nn.Module, counted: set[int], called: set[int], leaf: bool) -> int:
    """Parameters shown in ``module``'s row: its own, plus those of submodules that never ran as modules
    (``MultiheadAttention`` uses its ``out_proj`` weights directly); each parameter once."""
    if id(module) in counted:
        return 0
    counted.add(id(module))
    total = sum(p.numel() for p in module.parameters(recurse=False))
    if not leaf:
        for sub in module.modules():
            if sub is not module and id(sub) not in called and id(sub) not in counted:
                counted.add(id(sub))
                total += sum(p.numel() for p in sub.parameters(recurse=False))
    return total


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of ``model`` for one image of ``input_shape`` (C, H, W)."""
    return summarize(model, input_shape).macs


# -- output ---------------------------------------------------------------------------------------------
def _count(n: int) -> str:
    return f"{n:,}"


def _macs(n: int) -> str:
    return f"{n:,}"


def render(summary: Summary) -> str:
    rows = [
        [
            i,
            layer.name,
            layer.type,
            "x".join(map(str, layer.shape)),
            _count(layer.params),
            _macs(layer.macs),
            "" if layer.rf is None else layer.rf,
            "" if layer.jump is None else layer.jump,
        ]
        for i, layer in enumerate(summary.layers, 1)
    ]
    header = ["#", "layer", "type", "output", "params", "MACs", "RF", "jump"]
    shape = "x".join(map(str, summary.input_shape))
    totals = [
        f"- parameters: {_count(summary.params)} ({_count(summary.trainable)} trainable)",
        f"- multiply-accumulates per image: {_count(summary.macs)} ({summary.macs / 1e6:,.2f}M)",
        f"- receptive field of the output: {summary.rf} pixels"
        + (f", jump {summary.jump}" if summary.jump else "")
        + f" (input {shape})",
    ]
    return "\n".join(
        [
            f"## {summary.arch}, input {shape}",
            "",
            markdown_table(header, rows, "rlllrrrr"),
            "",
            *totals,
            "",
            "RF: receptive field size in input pixels; jump: input pixels between neighbouring outputs.",
        ]
    )


def build_model(arch: str, num_classes: int, in_channels: int, image_size: int, arch_kwargs=None):
    """The registry's ``arch``, without pretrained weights (the structure is what counts here)."""
    kwargs = dict(arch_kwargs or {})
    if kwargs.get("pretrained"):
        kwargs["pretrained"] = False
    return get_model(arch, num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
