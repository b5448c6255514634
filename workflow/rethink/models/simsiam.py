"""SimSiam (Chen and He, "Exploring Simple Siamese Representation Learning", CVPR 2021), the
self-supervised pre-training this pipeline offers for conv backbones (issue 35).

Two augmented views of each image go through the same encoder (this pipeline's backbone,
whose weights the detector later loads; its last map average-pooled) and a projection MLP; a
predictor MLP on one view's projection regresses the other's, which is held fixed (stop-
gradient): the loss is the negative cosine similarity, symmetrised. No negatives, no momentum
encoder, no large batch: it fits a CPU budget. No labels are read. The projector and
predictor carry BatchNorm as the paper's do (without it SimSiam collapses) whatever the
backbone's norm; they are dropped after pre-training.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _mlp(dims: list[int], last_bn_affine: bool | None) -> nn.Sequential:
    """Linear (no bias), BN, ReLU between each pair of `dims`; the last layer keeps a bias and
    no BN when `last_bn_affine` is None (the predictor), else BN with that affinity (the projector)."""
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        last = i == len(dims) - 2
        if last and last_bn_affine is None:
            layers.append(nn.Linear(a, b))
            break
        layers += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b, affine=True if not last else last_bn_affine)]
        if not last:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SimSiam(nn.Module):
    """`encoder` maps images to a (B, C, h, w) map of `feature_dim` channels; the paper's
    projector is 3 layers of `proj_dim`, its predictor a bottleneck of `proj_dim` / 4."""

    def __init__(self, encoder: nn.Module, feature_dim: int, proj_dim: int | None = None):
        super().__init__()
        proj = proj_dim or feature_dim
        self.encoder = encoder
        self.projector = _mlp([feature_dim, proj, proj, proj], last_bn_affine=False)
        self.predictor = _mlp([proj, max(1, proj // 4), proj], last_bn_affine=None)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's pooled feature of each image (B, feature_dim)."""
        return self.encoder(images).mean((2, 3))

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """The symmetrised negative cosine similarity of one batch of view pairs (a scalar in [-1, 1])."""
        b = view1.shape[0]
        feats = self.embed(torch.cat([view1, view2]))  # one encoder pass for both views
        z1, z2 = self.projector(feats[:b]), self.projector(feats[b:])  # BN statistics per view, as the paper
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return -(F.cosine_similarity(p1, z2.detach(), dim=-1).mean()
                 + F.cosine_similarity(p2, z1.detach(), dim=-1).mean()) / 2
