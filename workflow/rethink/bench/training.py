"""The detection training step: our loop against a plain torchvision loop, data wait,
profile, and FLOP rate against this CPU's sgemm rate.

Arms, run interleaved (A B C A B C ...) on the same synthetic COCO set, model config and batch:

* ``plain_torchvision``: the loop of torchvision's detection reference (DataLoader with
  shuffling, loss sum, SGD with linear warm-up), on the config's model built from
  torchvision's modules only (its MultiScaleRoIAlign): what one would write without us.
* ``plain_fast_roi``: the same loop on our model as the pipeline builds it (RoIAlign with the
  fast CPU backward, rethink.roi_align): isolates that fix.
* ``ours``: `rethink.train.train_segment`, the function every training job runs (keyed
  batches and flips, per-iteration RNG seeding, LR schedule, finiteness check, deterministic
  kernels), timed from the timestamps of its own progress lines.
"""
from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import torch

from .. import synth
from ..data import CocoInstances, IterationBatches, collate, train_transforms
from ..models import build_mask_rcnn
from ..runtime import setup
from ..train import scaled_lr, train_segment
from .common import StampedLines, median, rnd

ARMS = ("plain_torchvision", "plain_fast_roi", "ours")
ROI_BACKWARD_KEYS = ("GeneratedBackwardFor_torchvision_roi_align_defaultBackward",
                     "_RoIAlignCPUBackward")


def synthetic_coco(root: Path, synth_cfg: dict, n_train: int, n_val: int = 1, seed: int = 0) -> Path:
    if not (root / "annotations" / "instances_train2017.json").exists():
        synth.generate_coco(root, {**synth_cfg, "det_train_images": n_train,
                                   "det_val_images": n_val}, seed=seed)
    return root


class _GlobalRNGAug(torch.utils.data.Dataset):
    """Plain-loop view of the dataset: each item's flip drawn from the global RNG, as the
    random transforms of torchvision's references do."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[(i, int(torch.randint(2**31 - 1, ()).item()))]


def plain_loop(dataset, model_cfg, train_cfg, iters, warmup, workers, fast_roi_align) -> dict:
    torch.use_deterministic_algorithms(False)
    torch.manual_seed(0)
    model = build_mask_rcnn(model_cfg, dataset.num_classes, fast_roi_align=fast_roi_align)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=scaled_lr(train_cfg), momentum=train_cfg["momentum"],
                          weight_decay=train_cfg["weight_decay"])
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=train_cfg["warmup_factor"],
                                             total_iters=max(1, train_cfg["warmup_iters"]))
    bs = train_cfg["batch_size"]
    loader = torch.utils.data.DataLoader(
        _GlobalRNGAug(dataset), batch_size=bs, shuffle=True, drop_last=True, num_workers=workers,
        collate_fn=collate, generator=torch.Generator().manual_seed(0),
        persistent_workers=workers > 0)
    batches = iter(loader)
    stamps = []
    for _ in range(warmup + iters):
        t0 = time.perf_counter()
        try:
            images, targets = next(batches)
        except StopIteration:
            batches = iter(loader)
            images, targets = next(batches)
        t1 = time.perf_counter()
        loss_dict = model(list(images), list(targets))
        losses = sum(loss_dict.values())
        opt.zero_grad()
        losses.backward()
        opt.step()
        warm.step()
        stamps.append((t0, t1, time.perf_counter()))
    timed = stamps[warmup:]
    wall = timed[-1][2] - timed[0][0]
    data = sum(t1 - t0 for t0, t1, _ in timed)
    return {"s_per_iter": wall / iters, "img_per_s": iters * bs / wall, "data_wait_frac": data / wall}


def ours(root, model_cfg, train_cfg, iters, warmup, workers, threads, out: Path) -> dict:
    """train_segment as a training job runs it (deterministic kernels on, `threads` threads)."""
    setup(threads)
    stream = StampedLines()
    try:
        with contextlib.redirect_stdout(stream):
            train_segment(str(root), model_cfg, train_cfg, "scratch", 0, warmup + iters, None,
                          str(out), log_every=1, num_workers=workers)
    finally:
        torch.use_deterministic_algorithms(False)
        out.unlink(missing_ok=True)
    lines = [(t, line) for t, line in stream.lines if line.startswith("iter ")]
    if len(lines) != warmup + iters:
        raise RuntimeError(f"expected {warmup + iters} progress lines from train_segment, got "
                           f"{len(lines)}: {[line for _, line in stream.lines][-5:]}")

    def data_wait(line):  # cumulative seconds, printed with 0.1 s resolution
        m = re.search(r"data wait ([\d.]+)s", line)
        return float(m[1]) if m else float("nan")

    (t_a, line_a), (t_b, line_b) = lines[warmup - 1], lines[-1]
    wall = t_b - t_a
    bs = train_cfg["batch_size"]
    return {"s_per_iter": wall / iters, "img_per_s": iters * bs / wall,
            "data_wait_frac": (data_wait(line_b) - data_wait(line_a)) / wall}


def data_load(root, train_cfg, workers, start, n) -> float:
    """Seconds per batch to load the batches train_segment loads (same sampler, collate and
    workers): with workers 0, the time the step waits on data; with workers, an upper bound."""
    dataset = CocoInstances(root, "train", train_transforms(train_cfg["flip_prob"]))
    sampler = IterationBatches(start, start + n, train_cfg["batch_size"], len(dataset),
                               train_cfg["seed"])
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                         num_workers=workers)
    t0 = time.perf_counter()
    for _ in loader:
        pass
    return (time.perf_counter() - t0) / n


def throughput(root, model_cfg, train_cfg, threads, workers, iters, warmup, repeats, work) -> dict:
    dataset = CocoInstances(root, "train", train_transforms(train_cfg["flip_prob"]))
    runs = {arm: [] for arm in ARMS}
    loads = []
    for rep in range(repeats):
        for arm in ARMS:
            torch.set_num_threads(threads)
            if arm == "ours":
                r = ours(root, model_cfg, train_cfg, iters, warmup, workers, threads,
                         Path(work) / f"ours_{rep}.pt")
                loads.append(data_load(root, train_cfg, workers, warmup, iters))
                r["data_load_frac"] = loads[-1] / r["s_per_iter"]
            else:
                r = plain_loop(dataset, model_cfg, train_cfg, iters, warmup, workers,
                               fast_roi_align=arm == "plain_fast_roi")
            runs[arm].append(r)
            print(f"  [training] repeat {rep + 1}/{repeats} {arm:>17}: {r['img_per_s']:6.2f} img/s, "
                  f"data wait {100 * r['data_wait_frac']:.1f}%", flush=True)

    def paired(a, b):  # median over repeats of the per-repeat ratio of img/s
        return rnd(median([x["img_per_s"] / y["img_per_s"] for x, y in zip(runs[a], runs[b])]), 3)

    arms = {arm: {"img_per_s": rnd(median([r["img_per_s"] for r in rs]), 2),
                  "s_per_iter": rnd(median([r["s_per_iter"] for r in rs]), 4),
                  "data_wait_frac": rnd(median([r["data_wait_frac"] for r in rs]), 4),
                  "img_per_s_runs": [rnd(r["img_per_s"], 2) for r in rs]}
            for arm, rs in runs.items()}
    # The wait: the loader's measured time per batch over the step (exact with workers 0;
    # with workers it is an upper bound, and the logged wait is the better number)
    wait = rnd(median([r["data_load_frac"] for r in runs["ours"]]), 4)
    if workers:
        wait = arms["ours"]["data_wait_frac"]
    return {
        "arms": arms,
        "ratio_ours_vs_plain_torchvision": paired("ours", "plain_torchvision"),
        "ratio_ours_vs_plain_same_model": paired("ours", "plain_fast_roi"),
        "ratio_fast_roi_vs_torchvision_roi": paired("plain_fast_roi", "plain_torchvision"),
        # ours' own log prints its cumulative data wait to 0.1 s: coarse over a short run
        "data_wait_frac_ours_logged": arms["ours"]["data_wait_frac"],
        "data_load_s_per_batch": rnd(median(loads), 4),
        "data_wait_frac_ours": wait,
        "workers": workers, "threads": threads, "batch_size": train_cfg["batch_size"],
        "iters_timed": iters, "warmup_iters": warmup, "repeats": repeats,
        "goals": {"ratio_ours_vs_plain_torchvision>=1.0": paired("ours", "plain_torchvision") >= 1.0,
                  "data_wait_frac_ours<0.05": wait < 0.05},
    }


def _fixed_batches(dataset, bs, n):
    return [collate([dataset[((j * bs + i) % len(dataset), j * bs + i)] for i in range(bs)])
            for j in range(n)]


def _model_and_step(dataset, model_cfg, train_cfg, fast_roi_align):
    torch.manual_seed(0)
    model = build_mask_rcnn(model_cfg, dataset.num_classes, fast_roi_align=fast_roi_align)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=scaled_lr(train_cfg),
                          momentum=train_cfg["momentum"], weight_decay=train_cfg["weight_decay"])

    def step(batch, seed):
        torch.manual_seed(seed)
        loss = sum(model(list(batch[0]), list(batch[1])).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def profile_step(root, model_cfg, train_cfg, threads, iters, top=10) -> dict:
    """torch.profiler over `iters` steps, with torchvision's and with our RoIAlign."""
    from torch.profiler import ProfilerActivity, profile

    dataset = CocoInstances(root, "train", train_transforms(train_cfg["flip_prob"]))
    batches = _fixed_batches(dataset, train_cfg["batch_size"], iters + 1)
    out = {}
    for name, fast in (("torchvision_roi_align", False), ("fast_roi_align", True)):
        setup(threads)  # as a training job: deterministic kernels, `threads` threads
        try:
            step = _model_and_step(dataset, model_cfg, train_cfg, fast)
            step(batches[0], 0)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                t0 = time.perf_counter()
                for j, batch in enumerate(batches[1:]):
                    step(batch, j + 1)
                wall = time.perf_counter() - t0
        finally:
            torch.use_deterministic_algorithms(False)
        events = prof.key_averages()
        total_self = sum(e.self_cpu_time_total for e in events)
        ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
        roi_bw = sum(e.cpu_time_total for e in events if e.key in ROI_BACKWARD_KEYS)
        out[name] = {
            "s_per_iter_profiled": rnd(wall / iters, 4),
            "roi_align_backward_ms_per_iter": rnd(roi_bw / 1e3 / iters, 2),
            "roi_align_backward_share": rnd(roi_bw / 1e6 / wall, 4),
            "top_self_cpu": [{"op": e.key, "ms_per_iter": rnd(e.self_cpu_time_total / 1e3 / iters, 2),
                              "share": rnd(e.self_cpu_time_total / total_self, 4),
                              "calls_per_iter": rnd(e.count / iters, 1)} for e in ranked],
        }
    return out


def bf16_on_cpu(root, model_cfg, train_cfg, threads, iters, repeats) -> dict:
    """The training step in fp32 and under bf16 autocast on this CPU, interleaved (fp32,
    bf16, fp32, ...) so that load changes hit both alike; best repeat of each."""
    dataset = CocoInstances(root, "train", train_transforms(train_cfg["flip_prob"]))
    batches = _fixed_batches(dataset, train_cfg["batch_size"], iters + 1)
    torch.set_num_threads(threads)
    times = {"fp32": [], "bf16": []}
    for _ in range(repeats):
        for mode in times:
            step = _model_and_step(dataset, model_cfg, train_cfg, True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
                step(batches[0], 0)
                t0 = time.perf_counter()
                for j, batch in enumerate(batches[1:]):
                    step(batch, j + 1)
            times[mode].append((time.perf_counter() - t0) / iters)
    best = {m: min(v) for m, v in times.items()}
    return {"s_per_iter": {m: rnd(v, 4) for m, v in best.items()}, "iters": iters, "repeats": repeats,
            "bf16_speedup": rnd(best["fp32"] / best["bf16"], 3)}


def sgemm_rate(n: int, threads: int, repeats: int) -> dict:
    """float32 torch.mm of n x n matrices at `threads` threads: FLOP/s (2 n^3 per product)."""
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return {"n": n, "threads": threads, "gflop_per_s_median": rnd(2 * n**3 / median(times) / 1e9, 2),
            "gflop_per_s_best": rnd(2 * n**3 / min(times) / 1e9, 2), "repeats": repeats}


def conv_rate(threads: int, repeats: int, batch: int = 8, channels: int = 64, size: int = 48) -> dict:
    """float32 3x3 convolution (oneDNN) at the default model's P2 shape: the best dense rate
    this CPU reaches through torch. On AMD CPUs MKL's sgemm can trail oneDNN's kernels."""
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, size, size, generator=gen)
    w = torch.randn(channels, channels, 3, 3, generator=gen)
    conv = torch.nn.functional.conv2d
    conv(x, w, padding=1)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        conv(x, w, padding=1)
        times.append(time.perf_counter() - t0)
    flops = 2 * batch * size * size * channels * channels * 9
    return {"shape": [batch, channels, size, size], "threads": threads,
            "gflop_per_s_median": rnd(flops / median(times) / 1e9, 2),
            "gflop_per_s_best": rnd(flops / min(times) / 1e9, 2), "repeats": repeats}


def flop_rate(root, model_cfg, train_cfg, threads, s_per_iter, sgemm_n, sgemm_repeats,
              batches=2) -> dict:
    """FLOPs of one training step (forward + backward, FlopCounterMode: convolutions and
    matrix products) over the measured s/iter, against the sgemm rate."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(threads)
    dataset = CocoInstances(root, "train", train_transforms(train_cfg["flip_prob"]))
    data = _fixed_batches(dataset, train_cfg["batch_size"], batches + 1)
    step = _model_and_step(dataset, model_cfg, train_cfg, True)
    step(data[0], 0)
    totals, per_op = [], {}
    for j, batch in enumerate(data[1:]):
        with FlopCounterMode(display=False) as counter:
            step(batch, j + 1)
        totals.append(counter.get_total_flops())
        for op, n in counter.get_flop_counts().get("Global", {}).items():
            per_op[str(op)] = per_op.get(str(op), 0) + n / batches
    flops = sum(totals) / len(totals)
    sgemm = sgemm_rate(sgemm_n, threads, sgemm_repeats)
    conv = conv_rate(threads, sgemm_repeats)
    step_rate = flops / s_per_iter / 1e9
    fraction = step_rate / sgemm["gflop_per_s_median"]
    best_dense = max(sgemm["gflop_per_s_median"], conv["gflop_per_s_median"])
    return {"gflop_per_step": rnd(flops / 1e9, 3), "s_per_iter_used": rnd(s_per_iter, 4),
            "step_gflop_per_s": rnd(step_rate, 2), "sgemm": sgemm,
            "fraction_of_sgemm": rnd(fraction, 4), "conv3x3": conv,
            "fraction_of_best_dense": rnd(step_rate / best_dense, 4),
            "gflop_by_op": {k: rnd(v / 1e9, 3) for k, v in
                            sorted(per_op.items(), key=lambda kv: -kv[1])},
            "goals": {"fraction_of_sgemm>=0.30": fraction >= 0.30}}
