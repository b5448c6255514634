"""ImageNet-style pre-training of the ResNet backbone (classification, cross-entropy).

Writes the backbone weights (no fc head) and a metrics JSON with val top-1 and the
compute seen (iterations, images), which the figures use to show pre-training's cost.

    python -m rethink.pretrain --imagenet DIR --model JSON --pretrain JSON \
        --out backbone.pt --out-metrics metrics.json
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import torch
from torch import nn
from torchvision import datasets
from torchvision.transforms import v2

from . import checkpoint
from .atomic import disk_full_exits, write_json
from .models import backbone_state, build_classifier
from .runtime import json_arg, setup

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # as torchvision's detection transform


def transforms(size: int, train: bool) -> v2.Compose:
    ops = [v2.ToImage()]
    if train:
        ops += [v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    else:
        ops += [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    return v2.Compose(ops + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])


def cosine_lr(it: int, total: int, base: float, warmup: int) -> float:
    if it < warmup:
        return base * (it + 1) / warmup
    return 0.5 * base * (1 + math.cos(math.pi * (it - warmup) / max(1, total - warmup)))


@torch.no_grad()
def top1(model, loader, device) -> float:
    model.eval()
    correct = seen = 0
    for x, y in loader:
        correct += (model(x.to(device)).argmax(1).cpu() == y).sum().item()
        seen += len(y)
    model.train()
    return correct / max(1, seen)


def pretrain(imagenet, model_cfg, cfg, out, out_metrics, device, workers=0):
    size = cfg["image_size"]
    train_set = datasets.ImageFolder(f"{imagenet}/train", transforms(size, True))
    val_set = datasets.ImageFolder(f"{imagenet}/val", transforms(size, False))
    if train_set.classes != val_set.classes:
        raise SystemExit(f"{imagenet}: train/ and val/ have different class folders")
    torch.manual_seed(cfg["seed"])
    gen = torch.Generator().manual_seed(cfg["seed"])
    bs = cfg["batch_size"]
    train_loader = torch.utils.data.DataLoader(train_set, bs, shuffle=True, drop_last=True,
                                               generator=gen, num_workers=workers)
    val_loader = torch.utils.data.DataLoader(val_set, 256, num_workers=workers)
    model = build_classifier(model_cfg, len(train_set.classes)).to(device)
    base_lr = cfg["lr"] * bs / 256  # linear scaling from the usual ImageNet reference batch
    optimizer = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=cfg["momentum"],
                                weight_decay=cfg["weight_decay"], nesterov=True)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"])
    total = cfg["epochs"] * len(train_loader)
    warmup = min(total, int(cfg["warmup_epochs"] * len(train_loader)))
    print(f"pre-training on {len(train_set)} images, {len(train_set.classes)} classes, "
          f"{cfg['epochs']} epochs = {total} iterations of {bs}, on {device}", flush=True)
    it, t0 = 0, time.perf_counter()
    acc = 0.0
    for epoch in range(cfg["epochs"]):
        running = 0.0
        for x, y in train_loader:
            for g in optimizer.param_groups:
                g["lr"] = cosine_lr(it, total, base_lr, warmup)
            loss = loss_fn(model(x.to(device)), y.to(device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"pre-training loss is {loss.item()} at iteration {it} "
                                         f"(lr {optimizer.param_groups[0]['lr']:.4g}): lower pretrain.lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.item()
            it += 1
        acc = top1(model, val_loader, device)
        elapsed = time.perf_counter() - t0
        print(f"epoch {epoch + 1}/{cfg['epochs']} loss={running / len(train_loader):.3f} "
              f"val top-1={acc:.4f} | {it * bs / elapsed:.0f} img/s, "
              f"{elapsed / (epoch + 1) * (cfg['epochs'] - epoch - 1):.0f}s left", flush=True)
    metrics = {"top1": acc, "epochs": cfg["epochs"], "iterations": total, "batch_size": bs,
               "images_seen": total * bs, "image_size": size,
               "pixels_seen": total * bs * size * size, "classes": len(train_set.classes),
               "train_images": len(train_set), "val_images": len(val_set),
               "seconds": round(time.perf_counter() - t0, 1)}
    meta = {"model": model_cfg, "input": {"channels": "RGB", "range": 1, "mean": MEAN, "std": STD}, **metrics}
    checkpoint.save({"model": backbone_state(model), "meta": meta}, out)
    write_json(out_metrics, metrics)
    print(f"val top-1 {acc:.4f}; wrote {out}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--imagenet", required=True, help="ImageNet-layout root (train/, val/)")
    p.add_argument("--model", required=True, help="model config as JSON")
    p.add_argument("--pretrain", required=True, help="pre-training config as JSON")
    p.add_argument("--out", required=True)
    p.add_argument("--out-metrics", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=0)
    args = p.parse_args(argv)
    device = setup(args.threads, args.device, deterministic=False)
    pretrain(args.imagenet, json_arg(args.model, "model"), json_arg(args.pretrain, "pretrain"),
             args.out, args.out_metrics, device, args.workers)


if __name__ == "__main__":
    with disk_full_exits():
        sys.exit(main())
