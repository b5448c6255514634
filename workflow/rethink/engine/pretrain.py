"""ImageNet-style pre-training of the backbone: classification (cross-entropy), or
self-supervised (pretrain.method: mae, simsiam; rethink.engine.methods) on the same images
without their labels.

Writes the backbone weights (no fc head, decoder or projector) and a metrics JSON with val
top-1 (self-supervised: of a kNN classifier on the frozen features) and the compute seen
(iterations, images), which the figures use to show pre-training's cost.

    python -m rethink.engine.pretrain --imagenet DIR --model JSON --pretrain JSON \
        --out backbone.pt --out-metrics metrics.json
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import shutil
import time
from pathlib import Path

import torch
from torch import nn
from torchvision import datasets

from rethink.analysis.stats import LEVELLED_OFF_POINTS, last_quarter_gain
from rethink.core.atomic import run_job, sha1_file, write_json
from rethink.core.config import json_arg
from rethink.core.conventions import IMAGENET_RGB
from rethink.core.kinds import PRETRAIN_METHODS
from rethink.data.imagenet import val_dataset
from rethink.engine import checkpoint, distributed, faults, methods
from rethink.engine.distributed import World
from rethink.engine.runtime import freeze_before_fork, setup
from rethink.models.detector import backbone_state

def cosine_lr(it: int, total: int, base: float, warmup: int) -> float:
    if it < warmup:
        return base * (it + 1) / warmup
    return 0.5 * base * (1 + math.cos(math.pi * (it - warmup) / max(1, total - warmup)))


def lr_at(it: int, total: int, base: float, warmup: int, cfg: dict, per_epoch: int) -> float:
    """Linear warm-up, then cosine decay to 0 or, with lr_schedule: step, x0.1 at each of
    lr_steps (epochs)."""
    if it < warmup:
        return base * (it + 1) / warmup
    if cfg.get("lr_schedule", "cosine") == "step":
        return base * 0.1 ** sum(it >= e * per_epoch for e in cfg["lr_steps"])
    return cosine_lr(it, total, base, warmup)


# Settings that only decide how often state is saved, or how fast data loads.
NOT_LINEAGE = ("checkpoint", "input", "workers", "checkpoint_every")


# The modules whose code decides the weights pre-training produces (its lineage).
LINEAGE_MODULES = ("rethink.engine.pretrain", "rethink.engine.methods", "rethink.models.detector",
                   "rethink.models.vit", "rethink.models.mae", "rethink.models.simsiam")


def lineage_of(model_cfg: dict, cfg: dict, train_set, processes: int) -> str:
    """What decides the weights at any epoch: settings, the train images, processes, code."""
    root = {"model": model_cfg, "pretrain": {k: v for k, v in cfg.items() if k not in NOT_LINEAGE},
            "processes": processes,
            "images": [(Path(p).name, c) for p, c in train_set.samples],
            "code": {m: sha1_file(importlib.import_module(m).__file__) for m in LINEAGE_MODULES},
            "torch": torch.__version__}
    return hashlib.sha1(json.dumps(root, sort_keys=True).encode()).hexdigest()


def _to(x: torch.Tensor, device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def state_dir(out) -> Path:
    return Path(out).parent / f"{Path(out).stem}_state"


def latest_state(folder: Path, lineage: str):
    """The newest resumable state in `folder` of this lineage, or None (others are ignored)."""
    for path in sorted(folder.glob("epoch_*.pt"), reverse=True):
        try:
            state = checkpoint.load(path, required=("model", "optimizer", "epoch", "lineage"))
        except RuntimeError as e:  # a kill in mid-write leaves no such file (atomic); corrupt: skip
            print(f"ignoring {path}: {e}", flush=True)
            continue
        if state["lineage"] == lineage:
            return path, state
    return None


class ShardedBatches:
    """This rank's share of each global batch of `batches` (World.shard)."""

    def __init__(self, batches, world: World):
        self.batches, self.world = batches, world

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            yield self.world.shard(batch)


def pretrain(imagenet, model_cfg, cfg, out, out_metrics, device, workers=0, world: World = World()):
    size, method = cfg["image_size"], cfg.get("method", "supervised")
    crop, val_resize = cfg.get("crop_scale", [0.5, 1.0]), cfg.get("val_resize", 1.0)
    train_set = datasets.ImageFolder(f"{imagenet}/train", methods.train_transform(
        method, size, crop, cfg.get("flip_prob", 0.5)))
    val_set = val_dataset(imagenet, train_set.class_to_idx, methods.transforms(size, False, val_resize=val_resize))
    torch.manual_seed(cfg["seed"])
    gen = torch.Generator().manual_seed(cfg["seed"])
    bs = cfg["batch_size"]
    # Every rank draws the same shuffled global batches and takes its share of each (one
    # process: the whole batch, exactly as DataLoader(shuffle=True, drop_last=True) would).
    batches = torch.utils.data.BatchSampler(torch.utils.data.RandomSampler(train_set, generator=gen),
                                            bs, drop_last=True)
    train_loader = torch.utils.data.DataLoader(train_set, batch_sampler=ShardedBatches(batches, world),
                                               generator=gen, num_workers=workers,
                                               pin_memory=device.type == "cuda")
    val_loader = torch.utils.data.DataLoader(val_set, 256, num_workers=workers)
    bank_loader = None if method == "supervised" else torch.utils.data.DataLoader(
        methods.knn_bank(train_set, size, val_resize), 256, num_workers=workers)
    model, encoder = methods.build(method, model_cfg, len(train_set.classes))
    model = model.to(device)
    # MAE's masks from a stream of their own, the same on every rank (each keeps its rows of
    # the global batch's): not from the global RNG, which the loader's transforms also draw
    # from when they run in this process, so masks depend on neither workers nor processes
    masks = torch.Generator(device).manual_seed(cfg["seed"]) if method == "mae" else None
    if cfg.get("bf16") and device.type != "cuda":
        print(f"bf16 autocast on {device}: numbers differ from fp32 runs, and on CPU it is usually "
              f"slower (see make bench, 'bf16 on CPU')", flush=True)
    channels_last = bool(cfg.get("channels_last")) and device.type == "cuda"  # pays on GPUs only
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = model
    if world.size > 1:  # gradients averaged over ranks: the global batch's, as one process
        net = methods.sync_batchnorm(net, model_cfg, method, device)
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
        print(f"rank {world.rank}/{world.size}: global batch {bs} = {world.size} x {bs // world.size} "
              f"images, LR for the global batch", flush=True)
    base_lr = cfg["lr"] * bs / 256  # linear scaling from the usual ImageNet reference batch
    optimizer = methods.optimizer(cfg, model, base_lr)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"])
    per_epoch = len(train_loader)
    total = cfg["epochs"] * per_epoch
    warmup = min(total, int(cfg["warmup_epochs"] * per_epoch))
    every = cfg.get("checkpoint_every", 1)
    states, lineage = state_dir(out), lineage_of(model_cfg, cfg, train_set, world.size)
    start, curve, seconds_before = 0, [], 0.0
    found = latest_state(states, lineage)
    if found is not None:  # a killed run of this job got this far
        path, state = found
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        gen.set_state(state["loader_rng"])
        if masks is not None:
            masks.set_state(state["mask_rng"])
        start, curve, seconds_before = state["epoch"], state["curve"], state["seconds"]
        print(f"resumed from {path} at epoch {start} (written by an earlier run of this job)", flush=True)
    print(f"{PRETRAIN_METHODS[method]} pre-training on {len(train_set)} images, {len(train_set.classes)} classes, "
          f"{cfg['epochs']} epochs = {total} iterations of {bs}, on {device}", flush=True)
    freeze_before_fork(workers)  # each epoch's workers fork from here on
    monitor = methods.MONITORS[method]
    t0 = time.perf_counter()
    for epoch in range(start, cfg["epochs"]):
        running, it = 0.0, epoch * per_epoch
        for x, y in train_loader:
            faults.kill_if("pretrain", it)
            for g in optimizer.param_groups:
                g["lr"] = lr_at(it, total, base_lr, warmup, cfg, per_epoch)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(cfg.get("bf16"))):
                x = [_to(v, device, channels_last) for v in x] if isinstance(x, list) else _to(x, device, channels_last)
                loss = methods.loss(method, net, x, y.to(device, non_blocking=True), loss_fn,
                                    masks, world.rank, world.size)
            summed = world.all_sum(loss.item())  # one sync and one all-reduce per step
            if not math.isfinite(summed):  # every rank stops together
                raise FloatingPointError(f"pre-training loss is {loss.item()} at iteration {it} "
                                         f"(lr {optimizer.param_groups[0]['lr']:.4g}): lower pretrain.lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += summed / world.size
            it += 1
        acc = (methods.top1(model, val_loader, device) if bank_loader is None else
               methods.knn_top1(encoder, bank_loader, val_loader, len(train_set.classes), device))
        curve.append({"epoch": epoch + 1, "top1": acc, "loss": running / per_epoch})
        elapsed = time.perf_counter() - t0
        print(f"epoch {epoch + 1}/{cfg['epochs']} loss={running / per_epoch:.3f} "
              f"{monitor}={acc:.4f} | {(epoch + 1 - start) * per_epoch * bs / elapsed:.0f} img/s, "
              f"{elapsed / (epoch + 1 - start) * (cfg['epochs'] - epoch - 1):.0f}s left", flush=True)
        if every and (epoch + 1) % every == 0 and epoch + 1 < cfg["epochs"] and world.main:
            path = states / f"epoch_{epoch + 1:04d}.pt"
            checkpoint.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "epoch": epoch + 1, "rng": torch.get_rng_state(), "curve": curve,
                             "loader_rng": gen.get_state(), "lineage": lineage,
                             **({"mask_rng": masks.get_state()} if masks is not None else {}),
                             "seconds": seconds_before + elapsed}, path)
            for older in states.glob("epoch_*.pt"):
                if older != path:
                    older.unlink()
    seconds = seconds_before + time.perf_counter() - t0
    acc = curve[-1]["top1"]
    metrics = {"top1": acc, "method": method, "monitor": monitor, "epochs": cfg["epochs"], "iterations": total, "batch_size": bs,
               "images_seen": total * bs, "image_size": size,
               "pixels_seen": total * bs * size * size, "classes": len(train_set.classes),
               "train_images": len(train_set), "val_images": len(val_set),
               "seconds": round(seconds, 1), "resumed_from_epoch": start, "curve": curve}
    gain = last_quarter_gain(curve)
    metrics.update(last_quarter_gain=round(gain, 2), levelled_off=gain < LEVELLED_OFF_POINTS)
    if world.main:  # ranks hold identical weights
        meta = {"model": model_cfg, "input": dict(IMAGENET_RGB), **metrics, "processes": world.size}
        checkpoint.save({"model": backbone_state(encoder), "meta": meta}, out)
        write_json(out_metrics, {**metrics, "processes": world.size})
        shutil.rmtree(states, ignore_errors=True)  # done: nothing left to resume
        print(f"{monitor} {acc:.4f}; wrote {out}", flush=True)
        quarter = f"the last quarter of its epochs added {gain:+.2f} {monitor} points"
        print(f"levelled off: {quarter}" if gain < LEVELLED_OFF_POINTS else
              f"warning: pre-training has not levelled off: {quarter} (>= {LEVELLED_OFF_POINTS}); "
              f"the pretrained branches start from a backbone more epochs would improve "
              f"(pretrain.epochs)", flush=True)
    world.barrier()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--imagenet", required=True, help="ImageNet-layout root (train/, val/)")
    p.add_argument("--model", required=True, help="model config as JSON")
    p.add_argument("--pretrain", required=True, help="pre-training config as JSON")
    p.add_argument("--out", required=True)
    p.add_argument("--out-metrics", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--gpus", type=int, default=0, help="GPUs this job was given (its gpu resource): without a working CUDA it stops at once")
    p.add_argument("--workers", type=int, default=0)
    args = p.parse_args(argv)
    world, device = distributed.init(setup(args.threads, args.device, deterministic=False, gpus=args.gpus,
                                           resource_key="resources.pretrain.gpu"))
    try:
        pretrain(args.imagenet, json_arg(args.model, "model"), json_arg(args.pretrain, "pretrain"),
                 args.out, args.out_metrics, device, args.workers, world)
    finally:
        distributed.shutdown(world)


if __name__ == "__main__":
    run_job(main)
