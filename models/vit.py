"""A small Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words", 2021), sized like
DeiT-Tiny (Touvron et al. 2021: width 192, 12 blocks, 3 heads; about 5.4M parameters) for small images.

Adapted: patches of 4x4 pixels on 32x32 images (64 tokens) and 2x2 on 28x28 (196 tokens) instead of
16x16 on 224x224; a learned position embedding; pre-norm blocks from ``nn.TransformerEncoderLayer``;
classification from a class token (``pool="cls"``, as in the paper) or from the mean of the patch
tokens (``pool="mean"``). Weights start as in timm (truncated normal, std 0.02), each block drawn
separately.
"""

import torch
import torch.nn as nn

from .registry import register_model


class VisionTransformer(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        patch_size: int | None = None,
        dim: int = 192,
        depth: int = 12,
        heads: int = 3,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        pool: str = "cls",
    ):
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {pool!r}")
        patch = patch_size or (2 if image_size < 32 else 4)
        if image_size % patch:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch}")
        tokens = (image_size // patch) ** 2
        self.pool = pool
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens + (pool == "cls"), dim))
        block = nn.TransformerEncoderLayer(
            dim, heads, dim * mlp_ratio, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(block, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.MultiheadAttention):
                nn.init.trunc_normal_(m.in_proj_weight, std=0.02)
                nn.init.zeros_(m.in_proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, tokens, dim)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)
        x = self.norm(self.blocks(x + self.pos_embed))
        return self.head(x[:, 0] if self.cls_token is not None else x.mean(dim=1))


@register_model
def vit_tiny(
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    patch_size: int | None = None,
    pool: str = "cls",
    dropout: float = 0.0,
) -> VisionTransformer:
    return VisionTransformer(num_classes, in_channels, image_size, patch_size, pool=pool, dropout=dropout)
