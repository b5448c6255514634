"""The detection training step: today's step against the step before issue 31 and a plain
torchvision loop, each speed option on its own, padding waste, data wait, profile, and FLOP
rate against this CPU's sgemm rate measured in the same run.

Arms, run interleaved (A B C ... A B C ...) on the same synthetic COCO set, model and batch:

* ``plain_torchvision``: the loop of torchvision's detection reference (DataLoader with
  shuffling, loss sum, SGD with linear warm-up), on the config's model built from
  torchvision's modules only (its MultiScaleRoIAlign): what one would write without us.
* ``baseline``: `rethink.engine.train.train_segment`, the function every training job runs, with the
  options of issue 31 off (batches of mixed aspect ratio, NCHW, fp32): the step as it was.
* one arm per option, added in turn on top of the baseline (`OPTIONS`): aspect-ratio
  grouping, channels_last, bf16 autocast; the config's own step is the arm whose settings
  match it (``config``). Each is train_segment as a training job runs it (keyed batches and
  flips, per-iteration RNG seeding, LR schedule, finiteness check, deterministic kernels),
  timed from the timestamps of its own progress lines.
"""
from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import numpy as np
import torch

from rethink.bench.common import StampedLines, median, rnd
from rethink.core.order import batch_indices
from rethink.data import writers
from rethink.data.coco import CocoInstances, IterationBatches, collate, train_transforms
from rethink.engine.runtime import setup
from rethink.engine.train import scaled_lr, train_segment
from rethink.models.detector import build_mask_rcnn

# Each option on top of the ones before it: the arms of the ablation, in order.
OPTIONS = (("group_by_aspect", True), ("channels_last", True), ("bf16", True))
BASELINE = {"group_by_aspect": False, "channels_last": False, "bf16": False}
ROI_BACKWARD_KEYS = ("GeneratedBackwardFor_torchvision_roi_align_defaultBackward",
                     "_RoIAlignCPUBackward")


def synthetic_coco(root: Path, synth_cfg: dict, n_train: int, n_val: int = 1, seed: int = 0) -> Path:
    if not (root / "annotations" / "instances_train2017.json").exists():
        writers.generate_coco(root, {**synth_cfg, "det_train_images": n_train,
                                   "det_val_images": n_val}, seed=seed)
    return root


def step_arms(train_cfg: dict) -> dict[str, dict]:
    """name -> training settings: the baseline, each option added in turn, and the config's
    own step (named ``config``, or the arm it equals)."""
    arms = {"baseline": {**train_cfg, **BASELINE}}
    on = dict(BASELINE)
    for key, value in OPTIONS:
        on[key] = value
        arms["+" + key] = {**train_cfg, **on}
    return arms


def config_arm(train_cfg: dict, arms: dict) -> str:
    """The arm whose settings are the config's (added as ``config`` when none is)."""
    mine = {k: bool(train_cfg.get(k, False)) for k in BASELINE}
    for name, cfg in arms.items():
        if {k: bool(cfg.get(k, False)) for k in BASELINE} == mine:
            return name
    arms["config"] = dict(train_cfg)
    return "config"


class _GlobalRNGAug(torch.utils.data.Dataset):
    """Plain-loop view of the dataset: each item's flip drawn from the global RNG, as the
    random transforms of torchvision's references do."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[(i, int(torch.randint(2**31 - 1, ()).item()))]


def plain_loop(dataset, model_cfg, train_cfg, iters, warmup, workers) -> dict:
    torch.use_deterministic_algorithms(False)
    torch.manual_seed(0)
    model = build_mask_rcnn(model_cfg, dataset.num_classes, fast_roi_align=False)
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


def padding_waste(dataset, model_cfg, train_cfg, start, n) -> float:
    """Padded over real pixels of the batches of iterations [start, start + n) as
    train_segment draws them: GeneralizedRCNNTransform resizes each image, then pads the
    batch to its largest height and width, each rounded up to a multiple of 32."""
    heights, widths = (np.asarray(v, dtype=np.float64) for v in dataset.sizes())
    f = np.minimum(model_cfg["min_size"] / np.minimum(heights, widths),
                   model_cfg["max_size"] / np.maximum(heights, widths))
    h, w = np.floor(heights * f), np.floor(widths * f)
    groups = dataset.aspect_groups(model_cfg) if train_cfg.get("group_by_aspect") else None
    padded = real = 0.0
    for it in range(start, start + n):
        idx = batch_indices(it, train_cfg["batch_size"], len(dataset), train_cfg["seed"], groups)
        padded += np.ceil(h[idx].max() / 32) * 32 * np.ceil(w[idx].max() / 32) * 32 * len(idx)
        real += float((h[idx] * w[idx]).sum())
    return padded / real


def data_load(root, train_cfg, workers, start, n, model_cfg) -> float:
    """Seconds per batch to load the batches train_segment loads (same sampler, collate and
    workers): with workers 0, the time the step waits on data; with workers, an upper bound."""
    dataset = CocoInstances(root, "train", train_transforms(train_cfg["flip_prob"]))
    groups = dataset.aspect_groups(model_cfg) if train_cfg.get("group_by_aspect") else None
    sampler = IterationBatches(start, start + n, train_cfg["batch_size"], len(dataset),
                               train_cfg["seed"], groups=groups)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                         num_workers=workers)
    t0 = time.perf_counter()
    for _ in loader:
        pass
    return (time.perf_counter() - t0) / n


def throughput(root, model_cfg, train_cfg, threads, workers, iters, warmup, repeats, work) -> dict:
    dataset = CocoInstances(root, "train", train_transforms(train_cfg["flip_prob"]))
    arms = step_arms(train_cfg)
    mine = config_arm(train_cfg, arms)
    runs = {arm: [] for arm in ["plain_torchvision", *arms]}
    loads = []
    for rep in range(repeats):
        for arm in runs:
            torch.set_num_threads(threads)
            if arm == "plain_torchvision":
                r = plain_loop(dataset, model_cfg, train_cfg, iters, warmup, workers)
            else:
                r = ours(root, model_cfg, arms[arm], iters, warmup, workers, threads,
                         Path(work) / f"ours_{rep}.pt")
            if arm == mine:
                loads.append(data_load(root, arms[arm], workers, warmup, iters, model_cfg))
                r["data_load_frac"] = loads[-1] / r["s_per_iter"]
            runs[arm].append(r)
            print(f"  [training] repeat {rep + 1}/{repeats} {arm:>17}: {r['img_per_s']:6.2f} img/s, "
                  f"data wait {100 * r['data_wait_frac']:.1f}%", flush=True)

    def paired(a, b):  # median over repeats of the per-repeat ratio of img/s
        return rnd(median([x["img_per_s"] / y["img_per_s"] for x, y in zip(runs[a], runs[b])]), 3)

    summary = {arm: {"img_per_s": rnd(median([r["img_per_s"] for r in rs]), 2),
                     "s_per_iter": rnd(median([r["s_per_iter"] for r in rs]), 4),
                     "data_wait_frac": rnd(median([r["data_wait_frac"] for r in rs]), 4),
                     "img_per_s_runs": [rnd(r["img_per_s"], 2) for r in rs]}
               for arm, rs in runs.items()}
    for arm, cfg in arms.items():
        summary[arm]["settings"] = {k: bool(cfg.get(k, False)) for k in BASELINE}
        summary[arm]["padding_waste"] = rnd(padding_waste(dataset, model_cfg, cfg, warmup, iters), 3)
        summary[arm]["ratio_vs_baseline"] = paired(arm, "baseline")
    # Each option against the arm before it: what adding it alone paid
    names = list(arms)[:len(OPTIONS) + 1]
    options = [{"option": key, "ratio_vs_without": paired(names[k + 1], names[k]),
                "in_config": bool(train_cfg.get(key, False))}
               for k, (key, _) in enumerate(OPTIONS)]
    # The wait: the loader's measured time per batch over the step (exact with workers 0;
    # with workers it is an upper bound, and the logged wait is the better number)
    wait = rnd(median([r["data_load_frac"] for r in runs[mine]]), 4)
    if workers:
        wait = summary[mine]["data_wait_frac"]
    ratio = paired(mine, "baseline")
    epoch_iters = len(dataset) // train_cfg["batch_size"]
    waste_epoch = rnd(padding_waste(dataset, model_cfg, train_cfg, 0, epoch_iters), 3)
    return {
        "arms": summary, "config_arm": mine, "options": options,
        "ratio_config_vs_baseline": ratio,
        "ratio_config_vs_plain_torchvision": paired(mine, "plain_torchvision"),
        "padding_waste_config_epoch": waste_epoch,
        "padding_waste_baseline_epoch": rnd(padding_waste(dataset, model_cfg, arms["baseline"], 0,
                                                          epoch_iters), 3),
        "data_load_s_per_batch": rnd(median(loads), 4),
        "data_wait_frac_config": wait,
        "train_images": len(dataset), "workers": workers, "threads": threads,
        "batch_size": train_cfg["batch_size"], "iters_timed": iters, "warmup_iters": warmup,
        "repeats": repeats,
        "goals": {"ratio_config_vs_baseline>=2.0": ratio >= 2.0,
                  "padding_waste_config_epoch<=1.15": waste_epoch <= 1.15,
                  "data_wait_frac_config<0.05": wait < 0.05},
    }


def config_batches(dataset, model_cfg, train_cfg, n, start=0):
    """The first n batches train_segment draws with `train_cfg` (grouping, keyed flips)."""
    groups = dataset.aspect_groups(model_cfg) if train_cfg.get("group_by_aspect") else None
    sampler = IterationBatches(start, start + n, train_cfg["batch_size"], len(dataset),
                               train_cfg["seed"], groups=groups)
    return [collate([dataset[item] for item in batch]) for batch in sampler]


def _model_and_step(dataset, model_cfg, train_cfg):
    """The model and one optimisation step as train_segment runs it (channels_last and bf16
    autocast as configured, autocast entered afresh each step)."""
    torch.manual_seed(0)
    model = build_mask_rcnn(model_cfg, dataset.num_classes)
    if train_cfg.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=scaled_lr(train_cfg),
                          momentum=train_cfg["momentum"], weight_decay=train_cfg["weight_decay"])

    def step(batch, seed):
        torch.manual_seed(seed)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(train_cfg.get("bf16"))):
            loss = sum(model(list(batch[0]), list(batch[1])).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return model, step


# torchvision's per-image Python around the heads' arithmetic: anchor matching, sampling,
# target encoding and the losses' bookkeeping. Batching it over images saves at most this.
MATCHING = {"rpn": ("assign_targets_to_anchors", "compute_loss"),
            "roi_heads": ("select_training_samples",)}


def profile_step(root, model_cfg, train_cfg, threads, iters, top=10) -> dict:
    """torch.profiler over `iters` steps of the config's step, and the share of the step in
    torchvision's per-image matching and sampling (`MATCHING`), timed around those methods."""
    from torch.profiler import ProfilerActivity, profile

    dataset = CocoInstances(root, "train", train_transforms(train_cfg["flip_prob"]))
    batches = config_batches(dataset, model_cfg, train_cfg, 2 * iters + 1)
    setup(threads)  # as a training job: deterministic kernels, `threads` threads
    try:
        model, step = _model_and_step(dataset, model_cfg, train_cfg)
        step(batches[0], 0)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            for j, batch in enumerate(batches[1:iters + 1]):
                step(batch, j + 1)
            wall = time.perf_counter() - t0
        spent = {"s": 0.0}
        for module, methods in MATCHING.items():
            for name in methods:
                _time_method(getattr(model, module), name, spent)
        t0 = time.perf_counter()
        for j, batch in enumerate(batches[iters + 1:]):
            step(batch, j + 1)
        matching_share = spent["s"] / (time.perf_counter() - t0)
    finally:
        torch.use_deterministic_algorithms(False)
    events = prof.key_averages()
    total_self = sum(e.self_cpu_time_total for e in events)
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    roi_bw = sum(e.cpu_time_total for e in events if e.key in ROI_BACKWARD_KEYS)
    return {
        "s_per_iter_profiled": rnd(wall / iters, 4),
        "aten_calls_per_iter": rnd(sum(e.count for e in events) / iters, 1),
        "roi_align_backward_ms_per_iter": rnd(roi_bw / 1e3 / iters, 2),
        "roi_align_backward_share": rnd(roi_bw / 1e6 / wall, 4),
        "matching_sampling_share": rnd(matching_share, 4),
        "matching_methods": {m: list(v) for m, v in MATCHING.items()},
        "top_self_cpu": [{"op": e.key, "ms_per_iter": rnd(e.self_cpu_time_total / 1e3 / iters, 2),
                          "share": rnd(e.self_cpu_time_total / total_self, 4),
                          "calls_per_iter": rnd(e.count / iters, 1)} for e in ranked],
    }


def _time_method(obj, name, spent):
    inner = getattr(obj, name)

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent["s"] += time.perf_counter() - t0
    setattr(obj, name, timed)


def compile_backbone(root, model_cfg, train_cfg, threads, iters, job_iters) -> dict:
    """torch.compile of backbone and FPN (inductor): forward + backward of one padded shape,
    eager and compiled, interleaved, and the compile's own time, against a training job of
    `job_iters` iterations: it pays if the time saved over the job exceeds the compile (each
    new padded shape compiles again; a job of this study meets several)."""
    torch.set_num_threads(threads)
    dataset = CocoInstances(root, "train", train_transforms(train_cfg["flip_prob"]))
    torch.manual_seed(0)
    model = build_mask_rcnn(model_cfg, dataset.num_classes)
    if train_cfg.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    images, _ = config_batches(dataset, model_cfg, train_cfg, 1)[0]
    x = model.transform(list(images))[0].tensors
    if train_cfg.get("channels_last"):
        x = x.contiguous(memory_format=torch.channels_last)
    body = model.backbone

    def run(fn, n):
        t0 = time.perf_counter()
        for _ in range(n):
            sum(v.sum() for v in fn(x).values()).backward()
        return (time.perf_counter() - t0) / n

    run(body, 1)
    compiled = torch.compile(body)
    compile_s = run(compiled, 1)
    eager, fast = [], []
    for _ in range(2):
        eager.append(run(body, iters))
        fast.append(run(compiled, iters))
    saved = min(eager) - min(fast)
    shapes = len(set(dataset.aspect_groups(model_cfg).tolist()))
    pays = saved * job_iters > compile_s * shapes
    return {"s_fwd_bwd_eager": rnd(min(eager), 4), "s_fwd_bwd_compiled": rnd(min(fast), 4),
            "ratio": rnd(min(eager) / min(fast), 3), "compile_s": rnd(compile_s, 1),
            "padded_shapes": shapes, "job_iters": job_iters,
            "saved_s_per_job": rnd(saved * job_iters, 1), "kept": bool(pays),
            "why": ("pays" if pays else
                    f"saves {saved * job_iters:.0f} s over a {job_iters}-iteration job, compiling "
                    f"{shapes} padded shapes costs about {compile_s * shapes:.0f} s")}


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


def flop_rate(root, model_cfg, arms: dict, threads, sgemm_n, sgemm_repeats, batches=2) -> dict:
    """FLOPs of one training step of each arm (forward + backward, FlopCounterMode: convolutions
    and matrix products, on the batches that arm draws: padding counts) over its measured
    s/iter, against the sgemm rate measured here. `arms`: name -> (train settings, s/iter)."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(threads)
    sgemm = sgemm_rate(sgemm_n, threads, sgemm_repeats)
    conv = conv_rate(threads, sgemm_repeats)
    best_dense = max(sgemm["gflop_per_s_median"], conv["gflop_per_s_median"])
    dataset = CocoInstances(root, "train", train_transforms(next(iter(arms.values()))[0]["flip_prob"]))
    out = {"sgemm": sgemm, "conv3x3": conv, "arms": {}}
    for name, (train_cfg, s_per_iter) in arms.items():
        data = config_batches(dataset, model_cfg, train_cfg, batches + 1)
        _, step = _model_and_step(dataset, model_cfg, {**train_cfg, "bf16": False})
        step(data[0], 0)
        totals, per_op = [], {}
        for j, batch in enumerate(data[1:]):
            with FlopCounterMode(display=False) as counter:
                step(batch, j + 1)
            totals.append(counter.get_total_flops())
            for op, n in counter.get_flop_counts().get("Global", {}).items():
                per_op[str(op)] = per_op.get(str(op), 0) + n / batches
        flops = sum(totals) / len(totals)
        rate = flops / s_per_iter / 1e9
        out["arms"][name] = {
            "gflop_per_step": rnd(flops / 1e9, 3), "s_per_iter_used": rnd(s_per_iter, 4),
            "step_gflop_per_s": rnd(rate, 2),
            "fraction_of_sgemm": rnd(rate / sgemm["gflop_per_s_median"], 4),
            "fraction_of_best_dense": rnd(rate / best_dense, 4),
            "gflop_by_op": {k: rnd(v / 1e9, 3) for k, v in sorted(per_op.items(), key=lambda kv: -kv[1])}}
    return out
