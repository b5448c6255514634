"""A plain Vision Transformer backbone and ViTDet's simple feature pyramid (issue 35).

`model.arch: vit`: patch embedding (a conv of kernel and stride `model.vit.patch_size`), a
learnt absolute position embedding laid out for a `model.vit.pos_size` image (pre-training's
crop) and interpolated to each input's grid, `depth` pre-norm transformer blocks of width
`width` (global self-attention, GELU MLP), a final LayerNorm: Dosovitskiy et al., 2021, as
timm's VisionTransformer without a class token. For detection, ViTDet's simple feature
pyramid (Li, Mao, Girshick, He, 2022, Fig. 2) builds strides 4, 8, 16 and 32 from the last
map alone, by deconvolutions and max pooling, each level then a 1x1 and a 3x3 conv normalised
as the rest of the detector (model.norm), and a stride-64 level pooled from the last, so the
FPN's levels, anchors and RoI heads are the ResNet's.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

STRIDES = (4, 8, 16, 32)  # the pyramid's levels: a ResNet-FPN's "0".."3"


def resize_positions(pos: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """A (1, g*g, D) position embedding of a square grid on an h x w grid (bicubic, as ViTDet
    and timm resize it); itself on its own grid."""
    grid = math.isqrt(pos.shape[1])
    if (h, w) == (grid, grid):
        return pos
    pos = pos.reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
    pos = F.interpolate(pos, size=(h, w), mode="bicubic", align_corners=False)
    return pos.permute(0, 2, 3, 1).reshape(1, h * w, -1)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model.width ({dim}) must be a multiple of model.vit.heads ({heads})")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    """Plain ViT; `forward` gives the last map (B, width, H/p, W/p), or class logits (mean of
    the tokens, then a linear layer) with `num_classes`."""

    def __init__(self, depth: int, width: int, patch_size: int = 8, heads: int = 4, mlp_ratio: float = 4.0,
                 pos_size: int = 64, num_classes: int | None = None):
        super().__init__()
        if pos_size % patch_size:
            raise ValueError(f"model.vit.pos_size ({pos_size}) must be a multiple of model.vit.patch_size ({patch_size})")
        self.patch_size, self.width = patch_size, width
        self.patch_embed = nn.Conv2d(3, width, patch_size, patch_size)
        grid = pos_size // patch_size
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, width))
        self.blocks = nn.Sequential(*[Block(width, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.fc = nn.Linear(width, num_classes) if num_classes is not None else None
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():  # timm's ViT init: truncated normal linears, zero biases
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)

    def position(self, h: int, w: int) -> torch.Tensor:
        """The position embedding on an h x w grid."""
        return resize_positions(self.pos_embed, h, w)

    def forward(self, x):
        x = self.patch_embed(x)
        b, d, h, w = x.shape
        x = self.norm(self.blocks(x.flatten(2).transpose(1, 2) + self.position(h, w)))
        if self.fc is not None:
            return self.fc(x.mean(1))
        return x.transpose(1, 2).reshape(b, d, h, w)


class SimpleFeaturePyramid(nn.Module):
    """ViTDet's pyramid on a ViT: the last map rescaled to each of STRIDES (2x2 deconvolutions
    up, 2x2 max pooling down), a 1x1 and a 3x3 conv (each normalised) per level, and a "pool"
    level (stride 64) as torchvision's FPN adds: {"0": stride 4, ..., "3": 32, "pool": 64}."""

    def __init__(self, vit: ViT, out_channels: int, norm_layer=None):
        super().__init__()
        self.body, self.out_channels = vit, out_channels
        p, d = vit.patch_size, vit.width
        if p & (p - 1) or not 1 <= p <= 64:
            raise ValueError(f"model.vit.patch_size must be a power of two up to 64, got {p}")
        norm = norm_layer or (lambda c: nn.Identity())
        self.levels = nn.ModuleList()
        for stride in STRIDES:
            steps, layers, ch = int(math.log2(p / stride)) if stride < p else 0, [], d
            for i in range(steps):  # up: ViTDet's deconv, norm, GELU, deconv
                if i:
                    layers += [norm(ch), nn.GELU()]
                layers.append(nn.ConvTranspose2d(ch, ch // 2, 2, 2))
                ch //= 2
            layers += [nn.MaxPool2d(2, 2) for _ in range(int(math.log2(stride / p)) if stride > p else 0)]
            layers += [nn.Conv2d(ch, out_channels, 1, bias=norm_layer is None), norm(out_channels),
                       nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=norm_layer is None),
                       norm(out_channels)]
            self.levels.append(nn.Sequential(*layers))

    def forward(self, x):
        top = self.body(x)
        out = OrderedDict((str(i), level(top)) for i, level in enumerate(self.levels))
        out["pool"] = F.max_pool2d(out[str(len(STRIDES) - 1)], 1, 2)
        return out


def build_vit(model_cfg: dict, num_classes: int | None = None) -> ViT:
    vit = model_cfg["vit"]
    return ViT(model_cfg["depth"], model_cfg["width"], vit["patch_size"], vit["heads"], vit["mlp_ratio"],
               vit["pos_size"], num_classes=num_classes)
