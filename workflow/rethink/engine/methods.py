"""The kinds of pre-training (`pretrain.method`): what each trains, on which views of the
images, with which loss, how its progress is monitored, and which weights detection loads.

- supervised: the paper's ImageNet classification, cross-entropy on the labels; monitored
  by val top-1.
- mae: masked autoencoding (rethink.models.mae, He et al. 2022), a ViT's (model.arch: vit).
- simsiam: SimSiam (rethink.models.simsiam, Chen and He 2021), any backbone.

The self-supervised methods never read a label while training. Their progress is monitored
by a k-nearest-neighbour classifier on the frozen, pooled features (Wu et al. 2018's weighted
vote, k = 20, temperature 0.07, as DINO and SimSiam's follow-ups report it): val top-1 on the
same val images, kept under the same "top1" key so that the levelling-off check, the figures
and the claims read one number, with `monitor` saying which.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets
from torchvision.transforms import v2

from rethink.core.conventions import IMAGENET_RGB
from rethink.core.kinds import PRETRAIN_METHODS
from rethink.models.detector import build_body
from rethink.models.mae import MAE
from rethink.models.simsiam import SimSiam

MONITORS = {"supervised": "val top-1", "mae": "kNN top-1", "simsiam": "kNN top-1"}
METHODS = tuple(PRETRAIN_METHODS)
KNN_K, KNN_TEMPERATURE = 20, 0.07
KNN_BANK_IMAGES = 20_000  # the kNN's labelled bank: evenly spaced train images (all of the miniature's)
MEAN, STD = IMAGENET_RGB["mean"], IMAGENET_RGB["std"]  # as torchvision's detection transform


def transforms(size: int, train: bool, crop_scale=(0.5, 1.0), val_resize: float = 1.0,
               flip_prob: float = 0.5) -> v2.Compose:
    """Train: a random-resized crop of `crop_scale` of the image (the standard recipe:
    0.08-1) and a flip. Val: short side to `val_resize` x size (standard: 256/224), centre crop."""
    ops = [v2.ToImage()]
    if train:
        ops += [v2.RandomResizedCrop(size, scale=tuple(crop_scale), antialias=True), v2.RandomHorizontalFlip(flip_prob)]
    else:
        ops += [v2.Resize(round(size * val_resize), antialias=True), v2.CenterCrop(size)]
    return v2.Compose(ops + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])


class TwoViews:
    """Two independent draws of `transform` of one image (a picklable class, for workers)."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image):
        return self.transform(image), self.transform(image)


def train_transform(method: str, size: int, crop_scale, flip_prob: float):
    """The training views: one crop and flip (supervised, MAE); for SimSiam two views, each
    also colour-jittered (0.4, 0.4, 0.4, 0.1 with probability 0.8) and greyscaled with
    probability 0.2, the paper's recipe without its blur (its CIFAR recipe has none either)."""
    if method != "simsiam":
        return transforms(size, True, crop_scale, flip_prob=flip_prob)
    return TwoViews(v2.Compose([
        v2.ToImage(), v2.RandomResizedCrop(size, scale=tuple(crop_scale), antialias=True),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), v2.RandomGrayscale(0.2),
        v2.RandomHorizontalFlip(flip_prob), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]))


def feature_dim(encoder: nn.Module) -> int:
    """Channels of a backbone's last map: a ResNet's or VGG's last stage, a ViT's width."""
    return encoder.stage_channels[-1] if hasattr(encoder, "stage_channels") else encoder.width


def build(method: str, model_cfg: dict, num_classes: int) -> tuple[nn.Module, nn.Module]:
    """(the module that trains, the backbone inside it whose weights detection loads)."""
    if method == "supervised":
        model = build_body(model_cfg, num_classes)
        return model, model
    if method not in METHODS:
        raise ValueError(f"pretrain.method must be one of {list(METHODS)}, got {method!r}")
    if method == "mae" and model_cfg.get("arch", "resnet") != "vit":
        raise ValueError(f"pretrain.method: mae needs model.arch: vit, got {model_cfg.get('arch', 'resnet')}")
    encoder = build_body(model_cfg)
    if method == "mae":  # a decoder half the encoder's width, one block: MAE's Table 1 (84.8 vs 84.9 at 8 blocks)
        heads = max(1, model_cfg["vit"]["heads"] // 2)
        return MAE(encoder, decoder_width=encoder.width // 2, decoder_depth=1, decoder_heads=heads), encoder
    return SimSiam(encoder, feature_dim(encoder)), encoder


def sync_batchnorm(net: nn.Module, model_cfg: dict, method: str, device: torch.device) -> nn.Module:
    """For several processes: BatchNorm over all ranks' images where the backbone asks for it
    (norm: SyncBN), and every BatchNorm of SimSiam's, as Chen and He sync them (its projector
    and predictor's, a BN backbone's; a GN backbone keeps its GroupNorm). Torch syncs BatchNorm
    on GPUs alone: on CPU processes SimSiam keeps per-rank statistics."""
    if model_cfg["norm"] == "SyncBN" or (method == "simsiam" and device.type != "cpu"):
        return nn.SyncBatchNorm.convert_sync_batchnorm(net)
    return net


def loss(method: str, net: nn.Module, x, y: torch.Tensor, loss_fn, masks: torch.Generator | None = None,
         rank: int = 0, ranks: int = 1) -> torch.Tensor:
    """One batch's loss: `x` the images (SimSiam: a pair of view batches), `y` the labels,
    read by supervised training alone; `masks` draws MAE's masks, for this rank's share of the
    global batch (rethink.models.mae)."""
    if method == "supervised":
        return loss_fn(net(x), y)
    if method == "simsiam":
        return net(*x)
    return net(x, masks, rank=rank, ranks=ranks)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's groups as MAE and timm set them: no weight decay on norms, biases, position
    embeddings and mask tokens."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        skip = p.ndim <= 1 or name.endswith(("pos_embed", "decoder_pos", "mask_token"))
        (plain if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def optimizer(cfg: dict, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """pretrain.optimizer: sgd (Nesterov momentum, the supervised ResNet recipe; SimSiam's) or
    adamw (betas 0.9, 0.95: MAE's and DeiT's, for ViTs)."""
    if cfg.get("optimizer", "sgd") == "adamw":
        return torch.optim.AdamW(param_groups(model, cfg["weight_decay"]), lr=lr, betas=(0.9, 0.95))
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg["momentum"],
                           weight_decay=cfg["weight_decay"], nesterov=True)


@torch.no_grad()
def top1(model, loader, device) -> float:
    model.eval()
    correct = seen = 0
    for x, y in loader:
        correct += (model(x.to(device)).argmax(1).cpu() == y).sum().item()
        seen += len(y)
    model.train()
    return correct / max(1, seen)


@torch.no_grad()
def _features(encoder, loader, device) -> tuple[torch.Tensor, torch.Tensor]:
    feats, labels = [], []
    for x, y in loader:
        feats.append(F.normalize(encoder(x.to(device)).float().mean((2, 3)), dim=1).cpu())
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def knn_top1(encoder, bank_loader, val_loader, classes: int, device) -> float:
    """Val top-1 of the weighted k-nearest-neighbour vote among the bank's features (cosine
    similarity, weights exp(similarity / 0.07))."""
    was_training = encoder.training
    encoder.eval()
    bank, bank_labels = _features(encoder, bank_loader, device)
    val, val_labels = _features(encoder, val_loader, device)
    encoder.train(was_training)
    correct = 0
    for start in range(0, len(val), 1024):
        sim, idx = (val[start:start + 1024] @ bank.T).topk(min(KNN_K, len(bank)), dim=1)
        votes = torch.zeros(len(sim), classes).scatter_add_(1, bank_labels[idx], (sim / KNN_TEMPERATURE).exp())
        correct += (votes.argmax(1) == val_labels[start:start + 1024]).sum().item()
    return correct / max(1, len(val))


def knn_bank(train_set, size: int, val_resize: float):
    """The kNN's labelled bank: at most KNN_BANK_IMAGES train images, evenly spaced, with the
    val transform (the train set's own files, another view of them)."""
    bank = datasets.ImageFolder(train_set.root, transforms(size, False, val_resize=val_resize))
    step = max(1, -(-len(bank) // KNN_BANK_IMAGES))
    return torch.utils.data.Subset(bank, range(0, len(bank), step))
