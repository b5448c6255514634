"""Masked autoencoding on a ViT (He, Chen, Xie, Li, Dollár, Girshick, "Masked Autoencoders Are
Scalable Vision Learners", CVPR 2022), the self-supervised pre-training of issue 35.

A random `mask_ratio` of each image's patches is dropped; the encoder (this pipeline's ViT,
rethink.models.vit, whose weights the detector later loads) sees only the rest, with their
position embedding; a narrow decoder gets the encoded patches back in place among learnt
mask tokens, with a position embedding of its own, and predicts every masked patch's pixels,
each patch normalised by its own mean and variance (MAE's `norm_pix_loss`). The loss is the
mean squared error over the masked patches alone. No labels are read.
"""
from __future__ import annotations

import torch
from torch import nn

from rethink.models.vit import Block, ViT, resize_positions


class MAE(nn.Module):
    def __init__(self, encoder: ViT, decoder_width: int = 32, decoder_depth: int = 1, decoder_heads: int = 2,
                 mask_ratio: float = 0.75):
        super().__init__()
        if not 0 < mask_ratio < 1:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        self.encoder, self.mask_ratio = encoder, mask_ratio
        p = encoder.patch_size
        self.decoder_embed = nn.Linear(encoder.width, decoder_width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_width))
        # the decoder's own position embedding, on the encoder's grid
        self.decoder_pos = nn.Parameter(torch.zeros(1, encoder.pos_embed.shape[1], decoder_width))
        self.decoder = nn.Sequential(*[Block(decoder_width, decoder_heads, 4.0) for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_width, eps=1e-6)
        self.predict = nn.Linear(decoder_width, p * p * 3)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.decoder_pos, std=0.02)
        for m in [self.decoder_embed, self.predict, *self.decoder.modules()]:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def patches(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, N, p*p*3), row-major over the grid as the tokens are."""
        p = self.encoder.patch_size
        b, c, h, w = images.shape
        x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (h // p) * (w // p), p * p * c)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None,
                rank: int = 0, ranks: int = 1) -> torch.Tensor:
        """The reconstruction loss of one batch (a scalar); `generator` draws the masks. With
        `ranks` processes each holding its share of a global batch, every rank draws the whole
        global batch's noise and keeps its own rows: the masks one process would draw for it."""
        enc = self.encoder
        x = enc.patch_embed(images)
        b, d, h, w = x.shape
        x = x.flatten(2).transpose(1, 2) + enc.position(h, w)
        n = h * w
        keep = max(1, int(round(n * (1 - self.mask_ratio))))
        order = torch.rand(b * ranks, n, generator=generator, device=images.device)[rank * b:(rank + 1) * b].argsort(1)
        visible = order[:, :keep]
        x = enc.norm(enc.blocks(torch.gather(x, 1, visible[..., None].expand(-1, -1, d))))
        y = self.decoder_embed(x)
        full = self.mask_token.expand(b, n, -1).clone()
        full.scatter_(1, visible[..., None].expand(-1, -1, y.shape[-1]), y)
        y = self.predict(self.decoder_norm(self.decoder(full + resize_positions(self.decoder_pos, h, w))))
        target = self.patches(images)
        mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
        masked = torch.ones(b, n, device=images.device)
        masked.scatter_(1, visible, 0.0)
        return (((y - target) ** 2).mean(-1) * masked).sum() / masked.sum()
