"""Any torchvision classification model by name: ``--model.arch torchvision:<name>``.

``pretrained: true`` loads torchvision's ImageNet weights through its weights API (downloaded once into
the torch hub cache, ``$TORCH_HOME/hub/checkpoints``); the last linear layer is replaced for
``num_classes``; inputs are resized on the device to ``input_size`` (e.g. 224, the size the ImageNet
weights were trained at) and grayscale images are repeated to three channels. This is the source
article's fine-tuning recipe (an ImageNet ResNet-18 fine-tuned on CIFAR-10 at 224x224).
"""

import difflib

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tvm

from .errors import ModelError, UnknownNameError


def _replace_head(net: nn.Module, num_classes: int) -> None:
    """Swap the last ``nn.Linear`` (``fc``, ``classifier[-1]``, ``heads.head``, ...) for a new one."""
    linears = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ModelError(f"{type(net).__name__} has no linear output layer for cnnlab to replace")
    name, old = linears[-1]
    parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
    setattr(parent, name.rpartition(".")[2], nn.Linear(old.in_features, num_classes))


class TorchvisionClassifier(nn.Module):
    def __init__(
        self,
        name: str,
        num_classes: int = 10,
        in_channels: int = 3,
        pretrained: bool = False,
        input_size: int = 0,
    ):
        super().__init__()
        known = tvm.list_models(module=tvm)
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join('torchvision:' + c for c in close)}?" if close else ""
            raise UnknownNameError(f"torchvision has no classification model {name!r}.{hint}")
        if in_channels not in (1, 3):
            raise ModelError(f"torchvision:{name} takes 1 or 3 input channels, got {in_channels}")
        weights = tvm.get_model_weights(name).DEFAULT if pretrained else None
        try:
            self.net = tvm.get_model(name, weights=weights)
        except OSError as err:  # no network and no cached file
            file = weights.url.rsplit("/", 1)[-1]
            raise ModelError(
                f"could not load torchvision's ImageNet weights for {name} ({err}); place {file} in "
                f"{torch.hub.get_dir()}/checkpoints or set arch_kwargs pretrained: false"
            ) from err
        _replace_head(self.net, num_classes)
        self.in_channels, self.input_size = in_channels, input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.input_size and x.shape[-1] != self.input_size:
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        return self.net(x)
