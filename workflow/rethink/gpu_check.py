"""GPU speed check: the COCO-preset Mask R-CNN (R50-FPN, GroupNorm everywhere, 4conv1fc box
head) trained on synthetic 800x1333 batches for a fixed number of iterations, in fp32, bf16
autocast, and bf16 + channels_last; prints img/s and peak memory, and writes them as JSON.

    python -m rethink.gpu_check --iters 30 --batch 2 --out results/gpu_check.json

On a machine without a GPU it refuses unless --device cpu (for a smoke test at small size).
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from .atomic import write_json
from .models import build_mask_rcnn

PRESET_MODEL = {  # the paper's R50-FPN GN Mask R-CNN at COCO scale
    "depth": 50, "width": 64, "norm": "GN", "gn_groups": 32, "fpn_channels": 256,
    "box_head": {"convs": 4, "conv_channels": 256, "fc": 1024},
    "mask_head": {"convs": 4, "channels": 256},
    "rpn": {"pre_nms_train": 2000, "post_nms_train": 2000, "pre_nms_test": 1000,
            "post_nms_test": 1000, "batch_per_image": 256},
    "rois_per_image": 512, "min_size": 800, "max_size": 1333,
}
MODES = {"fp32": (False, False), "bf16": (True, False), "bf16+channels_last": (True, True)}


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


def measure(model_cfg, mode, iters, batch, device, warmup=3):
    bf16, channels_last = MODES[mode]
    torch.manual_seed(0)
    model = build_mask_rcnn(model_cfg, 80).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(0)
    h, w = model_cfg["min_size"], model_cfg["max_size"]
    data = [synthetic_batch(batch, h, w, device, gen) for _ in range(2)]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = None
    for i in range(warmup + iters):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
        images, targets = data[i % 2]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = sum(model(images, targets).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"mode": mode, "img_per_s": round(iters * batch / seconds, 2), "s_per_iter": round(seconds / iters, 4),
            "peak_mem_gib": None if peak is None else round(peak, 2), "iters": iters, "batch": batch}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--batch", type=int, default=2, help="images per iteration (one GPU)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--min-size", type=int, default=800)
    p.add_argument("--max-size", type=int, default=1333)
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--out", help="write the numbers here as JSON")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run this on a GPU machine (or --device cpu for a smoke test)")
    model_cfg = {**PRESET_MODEL, "min_size": args.min_size, "max_size": args.max_size}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"Mask R-CNN R50-FPN GN at {args.min_size}x{args.max_size}, batch {args.batch}, on {name}")
    rows = []
    for mode in args.modes:
        row = measure(model_cfg, mode, args.iters, args.batch, device, warmup=min(3, args.iters))
        rows.append(row)
        peak = "n/a" if row["peak_mem_gib"] is None else f"{row['peak_mem_gib']:.2f} GiB"
        print(f"{mode:>20}: {row['img_per_s']:7.2f} img/s  {row['s_per_iter']:.3f} s/iter  peak {peak}",
              flush=True)
    if args.out:
        write_json(args.out, {"device": name, "torch": torch.__version__, "image_size":
                              [args.min_size, args.max_size], "results": rows})


if __name__ == "__main__":
    sys.exit(main())
