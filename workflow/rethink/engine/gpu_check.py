"""GPU speed check: the COCO-preset Mask R-CNN (R50-FPN, GroupNorm everywhere, 4conv1fc box
head) trained on synthetic 800x1333 batches, and ResNet-50-GN pre-training on synthetic
224x224 batches, each for a fixed number of iterations in fp32, bf16 autocast, and bf16 +
channels_last; prints img/s and peak memory, and writes them as JSON.

    python -m rethink.engine.gpu_check --iters 20 --batch 2 --pretrain-batch 128 --out results/gpu_check.json

Without a working CUDA it fails (exit 1), printing what it found (the wheel's CUDA, the
driver, CUDA_VISIBLE_DEVICES): a check that passes on a machine whose GPU is not usable
would hide the problem the check is for. --skip-without-gpu makes that case print "no GPU:
skipped" and exit 0 instead (writing {"skipped": true, ...} to --out), as `make bench` does on
CPU machines; --device cpu is a smoke test at small size.

Anchors (training img/s per GPU): detectron2's scratch GN 3x Mask R-CNN runs 0.338 s/iter for
16 images on 8 V100s (~5.9 img/s per GPU); NVIDIA's optimized Mask R-CNN does ~24 img/s on
one A100 with AMP. Goal on one H200: at least 30 img/s in bf16.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn

from rethink.core.atomic import write_json
from rethink.engine.runtime import cuda_report
from rethink.models.detector import build_classifier, build_mask_rcnn

PRESET_MODEL = {  # the paper's R50-FPN GN Mask R-CNN at COCO scale
    "depth": 50, "width": 64, "norm": "GN", "gn_groups": 32, "fpn_channels": 256,
    "box_head": {"convs": 4, "conv_channels": 256, "fc": 1024},
    "mask_head": {"convs": 4, "channels": 256},
    "rpn": {"pre_nms_train": 2000, "post_nms_train": 2000, "pre_nms_test": 1000,
            "post_nms_test": 1000, "batch_per_image": 256},
    "rois_per_image": 512, "min_size": 800, "max_size": 1333,
}
MODES = {"fp32": (False, False), "bf16": (True, False), "bf16+channels_last": (True, True)}
ANCHORS = {"detectron2_scratch_gn_3x_v100_img_per_s": round(16 / 0.338 / 8, 2),
           "nvidia_maskrcnn_a100_amp_img_per_s": 24.0}
GOAL_BF16_IMG_PER_S = 30.0
SKIPPED = "no GPU: skipped"


def synthetic_batch(batch, height, width, device, gen):
    images, targets = [], []
    for _ in range(batch):
        images.append(torch.rand(3, height, width, generator=gen).to(device))
        n = 8
        xy = torch.rand(n, 2, generator=gen) * torch.tensor([width * 0.7, height * 0.7])
        wh = 32 + torch.rand(n, 2, generator=gen) * torch.tensor([width * 0.25, height * 0.25])
        boxes = torch.cat([xy, xy + wh], 1)
        masks = torch.zeros(n, height, width, dtype=torch.uint8)
        for i, (x0, y0, x1, y1) in enumerate(boxes.round().int().tolist()):
            masks[i, y0:y1, x0:x1] = 1
        targets.append({"boxes": boxes.to(device), "labels": torch.randint(1, 81, (n,), generator=gen).to(device),
                        "masks": masks.to(device)})
    return images, targets


def _timed_loop(step, data, iters, warmup, device):
    """Run warmup + iters steps; seconds of the timed ones, synchronised on GPUs."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = None
    for i in range(warmup + iters):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
        step(*data[i % len(data)])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def _row(mode, iters, batch, seconds, device):
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"mode": mode, "img_per_s": round(iters * batch / seconds, 2),
            "s_per_iter": round(seconds / iters, 4),
            "peak_mem_gib": None if peak is None else round(peak, 2), "iters": iters, "batch": batch}


def measure(model_cfg, mode, iters, batch, device, warmup=3):
    """Mask R-CNN training img/s and peak memory in one precision/memory-format mode."""
    bf16, channels_last = MODES[mode]
    torch.manual_seed(0)
    model = build_mask_rcnn(model_cfg, 80).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(0)
    h, w = model_cfg["min_size"], model_cfg["max_size"]
    data = [synthetic_batch(batch, h, w, device, gen) for _ in range(2)]

    def step(images, targets):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = sum(model(images, targets).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    seconds = _timed_loop(step, data, iters, warmup, device)
    row = _row(mode, iters, batch, seconds, device)
    return row


def measure_pretrain(mode, iters, batch, device, size=224, warmup=3, depth=50):
    """ResNet-GN classifier (ImageNet pre-training) img/s and peak memory."""
    bf16, channels_last = MODES[mode]
    torch.manual_seed(0)
    model = build_classifier({**PRESET_MODEL, "depth": depth}, 1000).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    data = [(torch.rand(batch, 3, size, size, generator=gen).to(device, memory_format=fmt),
             torch.randint(0, 1000, (batch,), generator=gen).to(device)) for _ in range(2)]

    def step(images, labels):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(images), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    seconds = _timed_loop(step, data, iters, warmup, device)
    row = _row(mode, iters, batch, seconds, device)
    return row


def _print_row(what, row):
    peak = "n/a" if row["peak_mem_gib"] is None else f"{row['peak_mem_gib']:.2f} GiB"
    print(f"{what} {row['mode']:>20}: {row['img_per_s']:8.2f} img/s  {row['s_per_iter']:.3f} s/iter  "
          f"peak {peak}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--batch", type=int, default=2, help="detection images per iteration (one GPU)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--min-size", type=int, default=800)
    p.add_argument("--max-size", type=int, default=1333)
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--pretrain-batch", type=int, default=0,
                   help="also time ResNet-50-GN pre-training at this batch (0: skip)")
    p.add_argument("--pretrain-size", type=int, default=224)
    p.add_argument("--out", help="write the numbers here as JSON")
    p.add_argument("--skip-without-gpu", action="store_true",
                   help="without a working CUDA, print 'no GPU: skipped' and exit 0 (default: fail)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        if not args.skip_without_gpu:
            print(f"error: --device {args.device}, but CUDA does not work here: {cuda_report()}",
                  file=sys.stderr, flush=True)
            return 1
        print(SKIPPED, flush=True)
        if args.out:
            write_json(args.out, {"skipped": True, "reason": "no CUDA device", "torch": torch.__version__,
                                  "found": cuda_report()})
        return 0
    # cudnn.benchmark stays off, as in training: the mask head's RoI count changes every step
    model_cfg = {**PRESET_MODEL, "min_size": args.min_size, "max_size": args.max_size}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"Mask R-CNN R50-FPN GN at {args.min_size}x{args.max_size}, batch {args.batch}, on {name}")
    warmup = min(3, args.iters)
    rows = []
    for mode in args.modes:
        rows.append(measure(model_cfg, mode, args.iters, args.batch, device, warmup=warmup))
        _print_row("mask r-cnn", rows[-1])
        if device.type == "cuda":
            torch.cuda.empty_cache()
    pre_rows = []
    if args.pretrain_batch:
        print(f"ResNet-50-GN pre-training at {args.pretrain_size}x{args.pretrain_size}, "
              f"batch {args.pretrain_batch}, on {name}")
        for mode in args.modes:
            pre_rows.append(measure_pretrain(mode, args.iters, args.pretrain_batch, device,
                                             size=args.pretrain_size, warmup=warmup))
            _print_row("resnet-50-gn", pre_rows[-1])
            if device.type == "cuda":
                torch.cuda.empty_cache()
    bf16 = next((r["img_per_s"] for r in rows if r["mode"] == "bf16"), None)
    goal = None
    if bf16 is not None and device.type == "cuda":
        goal = bf16 >= GOAL_BF16_IMG_PER_S
        print(f"bf16 Mask R-CNN: {bf16:.1f} img/s, goal >= {GOAL_BF16_IMG_PER_S:g}: "
              f"{'met' if goal else 'not met'} (anchors: {ANCHORS})", flush=True)
    if args.out:
        write_json(args.out, {"device": name, "torch": torch.__version__, "image_size":
                              [args.min_size, args.max_size], "results": rows,
                              "pretrain": pre_rows, "pretrain_image_size": args.pretrain_size,
                              "anchors": ANCHORS, "goal_bf16_img_per_s": GOAL_BF16_IMG_PER_S,
                              "goal_met": goal})
    return 0


if __name__ == "__main__":
    sys.exit(main())
