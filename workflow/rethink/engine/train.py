"""Train Mask R-CNN on a COCO-format set from iteration `start` to `end`, writing a
checkpoint at `end` and at every iteration of --checkpoints on the way (one training job:
consecutive segments of a branch), and evaluating each checkpoint in this process.

A job starts from the initialisation (start == 0: random, or a pre-trained backbone) or
from the checkpoint of the previous segment. Data order, flips and the RoI samplers'
randomness are keyed by (seed, iteration), and checkpoints hold the optimizer state, so
segments chained in any way give the same weights as one uninterrupted run.

    python -m rethink.engine.train --coco DIR --model JSON --train JSON --init scratch \
        --start-iter 0 --end-iter 30 --schedule-iters 90 --out DIR/iter_000030.pt \
        [--checkpoints 10 20] [--eval-settings FILE --eval-dir EVAL_DIR]

With --eval-settings (core.config.training_eval_settings as JSON), checkpoint iter_N.pt is
scored on val2017 as `rethink.evaluation.evaluate` would and the result left in
EVAL_DIR/iter_N/from_training/ for the evaluate job to adopt.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import time
from pathlib import Path

import torch
import torchvision

from rethink.core import schedule
from rethink.core.atomic import run_job, sha1_file, write_json
from rethink.core.config import LR_DECAY, json_arg
from rethink.core.conventions import check_conventions, model_input
from rethink.core.names import skipped_image_ids
from rethink.core.order import mix_seed
from rethink.data.coco import CocoInstances, IterationBatches, collate, keypoint_flip_index, train_transforms
from rethink.engine import checkpoint, distributed, faults
from rethink.engine.distributed import World
from rethink.engine.runtime import Progress, freeze_before_fork, process_age_s, rss_mb, setup
from rethink.models.backbones import check_given_for_scratch
from rethink.models.detector import build_mask_rcnn, load_backbone

WORKER_TIMEOUT_S = 600  # a data loader worker silent this long is reported, not waited on


def scaled_lr(train_cfg: dict) -> float:
    """Linear scaling rule: LR grows with batch size from the reference batch."""
    return train_cfg["base_lr"] * train_cfg["batch_size"] / train_cfg["reference_batch"]


def speed_options(train_cfg: dict, device: torch.device) -> dict:
    """bf16 autocast and channels_last, as configured, on any device (`make bench` measures
    what each pays on this CPU). bf16 pays only where the CPU has bf16 arithmetic (AMX-BF16,
    AVX512-BF16); elsewhere it is emulated, and slower."""
    wanted = {k: bool(train_cfg.get(k, False)) for k in ("bf16", "channels_last")}
    if wanted["bf16"] and device.type == "cpu":
        print(f"bf16 autocast on CPU ({torch.backends.cpu.get_cpu_capability()}): numbers differ "
              f"from fp32 runs within bf16 rounding; make bench says whether it pays here", flush=True)
    return wanted


def bs_note(train_cfg: dict, world: World) -> str:
    bs = train_cfg["batch_size"]
    return (f"global batch {bs} = {world.size} x {bs // world.size} images, "
            f"LR {scaled_lr(train_cfg):.4g} for the global batch")


def check_finite(loss_terms: dict, iteration: int, lr: float, train_cfg: dict,
                 world: World = World()) -> None:
    # Summed over ranks, so that every rank stops together instead of hanging in all-reduce;
    # summed on the device first, so that a GPU waits once per step, not once per term.
    total = world.all_sum(float(sum(v.detach().float() for v in loss_terms.values())))
    if math.isfinite(total):
        return
    terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in loss_terms.items())
    raise FloatingPointError(
        f"loss is not finite at iteration {iteration}: {terms}. LR was {lr:.4g} "
        f"(base_lr {train_cfg['base_lr']} at batch {train_cfg['batch_size']}, "
        f"warm-up {train_cfg['warmup_iters']} iterations): try a lower base_lr or a longer warm-up.")


def loader_failure(e: Exception, it: int, start: int, end: int) -> SystemExit:
    """A dead or stuck loader worker, reported with the iteration it was serving."""
    return SystemExit(f"data loader failed near iteration {it} (segment {start}->{end}): {e}. "
                      f"A killed worker is often the OOM killer: check memory, or set "
                      f"detection.workers: 0.")


def next_batch(batch_iter, it: int, start: int, end: int):
    """The loader's next batch; a dead worker's error becomes loader_failure's message."""
    try:  # PyTorch raises a worker's death here, or wherever its SIGCHLD handler fires
        return next(batch_iter)
    except RuntimeError as e:
        if "DataLoader" in str(e):
            raise loader_failure(e, it, start, end) from e
        raise
    except (EOFError, ConnectionError) as e:  # a worker killed mid-send: its queue's pipe broke
        raise loader_failure(e, it, start, end) from e


class CorruptCheckpoint(SystemExit):
    pass


def load_resume(path, job_output=None):
    """Load the checkpoint to resume from. A corrupt one is removed, with the last checkpoint
    of the job that wrote it (`job_output`, the one Snakemake knows), so that the next
    `snakemake` run retrains them from the checkpoint before that job (the previous good one)."""
    try:
        return checkpoint.load(path, required=("model", "optimizer", "iteration"))
    except RuntimeError as e:
        removed = [str(p) for p in dict.fromkeys([path, job_output]) if p is not None]
        for p in removed:
            Path(p).unlink(missing_ok=True)
        raise CorruptCheckpoint(f"{e}\nRemoved {' and '.join(removed)}: run snakemake again to "
                                f"retrain from the previous checkpoint.") from e


# The modules whose code decides the weights training produces (a checkpoint's lineage).
LINEAGE_MODULES = ("rethink.engine.train", "rethink.models.detector", "rethink.models.vit", "rethink.models.backbones",
                   "rethink.models.roi_align", "rethink.data.coco", "rethink.data.layout", "rethink.core.order",
                   "rethink.core.conventions", "rethink.core.schedule", "rethink.engine.checkpoint",
                   "rethink.engine.distributed", "rethink.engine.runtime")


def lineage_of(model_cfg, train_cfg, init, total, backbone, resume_meta, train_annotations,
               image_ids, world_size, device_type) -> str | None:
    """What determines a branch's weights at any iteration, as a hash: the checkpoint at a
    given iteration of a given lineage is always the same, however the branch was cut into
    jobs. A trunk's lineage hashes the settings, init, backbone, train set and training code;
    a tail's is its trunk's and the schedule length; a resumed segment inherits it. None when
    the checkpoint resumed from has none (written before lineages existed)."""
    if resume_meta is not None:
        parent = resume_meta.get("lineage")
        if parent is None or resume_meta.get("schedule_iters") == total:
            return parent
        return hashlib.sha1(f"{parent}/schedule of {total}".encode()).hexdigest()
    root = {"model": model_cfg, "train": train_cfg, "init": init, "schedule_iters": total,
            "backbone": sha1_file(backbone) if backbone else None,
            "train_annotations": sha1_file(train_annotations), "images": sorted(image_ids),
            "world_size": world_size, "device": device_type,
            "code": {m: sha1_file(importlib.import_module(m).__file__) for m in LINEAGE_MODULES},
            "torch": torch.__version__, "torchvision": torchvision.__version__}
    return hashlib.sha1(json.dumps(root, sort_keys=True).encode()).hexdigest()


def own_checkpoint(saves: dict, lineage: str | None, start: int):
    """(iteration, state) of the latest checkpoint of this job that an earlier, killed or
    superseded run of it wrote, such that it and every checkpoint of the job before it exist
    with this lineage (forks read those); None if there is none."""
    if lineage is None:
        return None
    good = None
    for it in sorted(saves):
        try:
            meta = checkpoint.peek(saves[it]) if saves[it].is_file() else None
        except RuntimeError as e:  # corrupt: rewritten from the previous one
            print(f"ignoring {saves[it]}: {e}", flush=True)
            meta = None
        if meta is None or meta.get("iteration") != it or meta.get("lineage") != lineage:
            break
        if meta["has_optimizer"]:
            good = it
    if good is None or good <= start:
        return None
    return good, checkpoint.load(saves[good], required=("model", "optimizer", "iteration"))


def checkpoint_path(folder, iteration: int) -> Path:
    """Where a branch's checkpoint at `iteration` lives (the workflow's naming)."""
    return Path(folder) / f"iter_{iteration:06d}.pt"


def build(coco_root, model_cfg, train_cfg, device, skip_ids=(), train_annotations=None, world=World()):
    """The train set, the model (its random init keyed by the seed alone), its optimizer and
    the speed options: what every segment builds before it restores anything."""
    keypoints = model_cfg.get("keypoints")
    dataset = CocoInstances(coco_root, "train", None, skip_ids=skip_ids, ann_file=train_annotations,
                            keypoints=bool(keypoints), masks=model_cfg.get("masks", True))
    if keypoints and len(dataset.keypoint_names) != keypoints["num"]:
        raise SystemExit(f"{train_annotations} names {len(dataset.keypoint_names)} keypoints per "
                         f"category, the model predicts {keypoints['num']} (keypoints.sigmas)")
    dataset.transforms = train_transforms(
        train_cfg["flip_prob"], keypoint_flip_index(dataset.keypoint_names) if keypoints else None)
    if train_annotations:
        print(f"training on the {len(dataset)} images of {train_annotations}", flush=True)
    if dataset.skipped:
        print(f"leaving out {dataset.skipped} train images the layout check found corrupt", flush=True)
    if len(dataset) == 0:
        raise SystemExit(f"{coco_root}: the train split has no images")
    torch.manual_seed(mix_seed(train_cfg["seed"], 4))  # the random init depends on the seed only
    model = build_mask_rcnn(model_cfg, dataset.num_classes).to(device)
    if train_cfg.get("scales"):  # scale augmentation: torchvision draws one short side per image
        model.transform.min_size = tuple(train_cfg["scales"])
    if model_cfg["norm"] == "SyncBN" and world.size == 1:
        print("SyncBN on a single process is plain BatchNorm (statistics of this process's batch)",
              flush=True)
    fast = speed_options(train_cfg, device)
    if fast["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=scaled_lr(train_cfg), momentum=train_cfg["momentum"],
                                weight_decay=train_cfg["weight_decay"])
    return dataset, model, optimizer, fast


def restore(model, optimizer, model_cfg, init, start, resume=None, resume_job=None, backbone=None):
    """Put the model where the segment starts: the previous segment's checkpoint (`resume`),
    the pre-trained backbone (init pretrained, start 0) or the random init. Returns the
    resumed checkpoint's meta, None when it starts from scratch or a backbone."""
    if resume is not None:
        state = load_resume(resume, resume_job)
        if state["iteration"] != start:
            raise SystemExit(f"{resume} is at iteration {state['iteration']}, segment starts at {start}")
        check_conventions(state.get("meta", {}), model_cfg, f"checkpoint {resume}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        print(f"resumed from {resume} at iteration {start}", flush=True)
        return state.get("meta", {})
    if start != 0:
        raise SystemExit(f"segment starts at {start} but no --resume checkpoint was given")
    if init == "pretrained":
        if backbone is None:
            raise SystemExit("--init pretrained needs --backbone")
        given = checkpoint.load(backbone, required=("model",))
        check_conventions(given.get("meta", {}), model_cfg, f"backbone {backbone}")
        load_backbone(model, given["model"])
        print(f"backbone initialised from {backbone} (input {model_input(model_cfg)})", flush=True)
    else:
        print("random initialisation", flush=True)
    return None


def loop(net, model, optimizer, loader, train_cfg, start, end, total, saves, meta, device, world, bf16,
         log_every, after_checkpoint, phases):
    """Train iterations [start, end) of `net` (`model`, wrapped for several processes), writing
    the checkpoint of each iteration in `saves` (rank 0) and calling after_checkpoint on it."""
    seed, bs = train_cfg["seed"], train_cfg["batch_size"]
    base_lr = scaled_lr(train_cfg)
    progress = Progress(end - start, log_every)
    net.train()
    phases.update(save_s=0.0, eval_s=0.0)
    t_data = 0.0
    t_loop = t0 = time.perf_counter()
    it = start
    batch_iter = iter(loader)
    while it < end:
        images, targets = next_batch(batch_iter, it, start, end)
        t_data += time.perf_counter() - t0
        faults.kill_if("iter", it)
        # RPN / RoI sampling draws (other ranks draw their own, decorrelated ones)
        torch.manual_seed(mix_seed(seed, it, 3) if world.main else mix_seed(seed, it, 3, world.rank))
        lr = schedule.lr_at(it, base_lr, total, train_cfg["one_x"], train_cfg["warmup_iters"],
                            train_cfg["warmup_factor"], train_cfg.get("lr_decay", LR_DECAY))
        for group in optimizer.param_groups:
            group["lr"] = lr
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in t.items()}
                   for t in targets]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss_terms = net(images, targets)
        check_finite(loss_terms, it, lr, train_cfg, world)
        loss = sum(loss_terms.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        line = progress.step()
        if line and world.main:
            terms = " ".join(f"{k.removeprefix('loss_')}={v.item():.3f}" for k, v in loss_terms.items())
            print(f"iter {it + 1}/{end} loss={loss.item():.3f} {terms} lr={lr:.4g} | {line} "
                  f"({progress.done * bs / (time.perf_counter() - progress.t0):.1f} img/s, "
                  f"data wait {t_data:.1f}s, rss {rss_mb():.0f} MB)", flush=True)
        it += 1
        if it in saves and world.main:  # ranks hold identical weights; one writes
            t_save = time.perf_counter()
            saved = {"model": model.state_dict(), "iteration": it, "meta": meta}
            if it != total:  # a schedule's last checkpoint: nothing trains on from it
                saved["optimizer"] = optimizer.state_dict()
            checkpoint.save(saved, saves[it])
            print(f"wrote {saves[it]}", flush=True)
            t_eval = time.perf_counter()
            phases["save_s"] += t_eval - t_save
            if after_checkpoint is not None:
                after_checkpoint(model, it, saves[it])
                net.train()
            phases["eval_s"] += time.perf_counter() - t_eval
        t0 = time.perf_counter()
    phases["train_s"] = time.perf_counter() - t_loop - phases["save_s"] - phases["eval_s"]


def train_segment(coco_root, model_cfg, train_cfg, init, start, end, total, out,
                  resume=None, backbone=None, device=torch.device("cpu"), log_every=10,
                  num_workers=0, meta=None, skip_ids=(), world=World(), train_annotations=None,
                  checkpoints=(), after_checkpoint=None, phases=None, resume_job=None):
    """Train [start, end) and write `out` at `end`, plus a checkpoint (next to `out`) at each
    iteration of `checkpoints` inside (start, end): build, restore, then loop. after_checkpoint
    (model, iteration, path) runs on rank 0 after each is written (the job's evaluation).
    `phases` (a dict) collects seconds spent setting up, training, writing checkpoints and in
    after_checkpoint."""
    phases = {} if phases is None else phases
    t_setup = time.perf_counter()
    saves = {int(i): checkpoint_path(Path(out).parent, int(i)) for i in checkpoints}
    if any(not start < i < end for i in saves):
        raise SystemExit(f"--checkpoints must lie inside ({start}, {end}), got {sorted(saves)}")
    saves[end] = Path(out)
    dataset, model, optimizer, fast = build(coco_root, model_cfg, train_cfg, device, skip_ids,
                                            train_annotations, world)
    for stale in [p for path in saves.values() for p in checkpoint.remove_stale_temps(path)]:
        print(f"removed {stale}, left by a killed writer", flush=True)
    resumed_meta = restore(model, optimizer, model_cfg, init, start, resume, resume_job, backbone)
    meta = {**(meta or {}), "schedule_iters": total, "input": model_input(model_cfg), "lineage": lineage_of(
        model_cfg, train_cfg, init, total, backbone, resumed_meta,
        train_annotations or Path(coco_root) / "annotations" / "instances_train2017.json",
        dataset.ids, world.size, device.type)}
    found = own_checkpoint(saves, meta["lineage"], start)
    if found is not None:  # an earlier run of this job got this far: go on from there
        start, state = found
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        print(f"resumed from {saves[start]} at iteration {start}, written by an earlier run of this "
              f"job (same lineage)", flush=True)
    phases["resumed_from"] = start
    net = model
    if world.size > 1:
        if model_cfg["norm"] == "SyncBN":
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
        print(f"rank {world.rank}/{world.size}: {bs_note(train_cfg, world)}", flush=True)
    groups = dataset.aspect_groups(model_cfg) if train_cfg.get("group_by_aspect") else None
    sampler = IterationBatches(start, end, train_cfg["batch_size"], len(dataset), train_cfg["seed"],
                               world.shard, groups)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                         num_workers=num_workers, pin_memory=device.type == "cuda",
                                         timeout=WORKER_TIMEOUT_S if num_workers else 0)
    freeze_before_fork(num_workers)
    phases["setup_s"] = time.perf_counter() - t_setup
    loop(net, model, optimizer, loader, train_cfg, start, end, total, saves, meta, device, world,
         fast["bf16"], log_every, after_checkpoint, phases)
    phases["iterations"] = end - start  # start: where this run began (after any earlier run's checkpoint)
    world.barrier()


def settings_arg(text: str, name: str) -> dict | None:
    """A JSON object (or null) the workflow passes outside the job's rerun triggers."""
    return None if text.strip() == "null" else json_arg(text, name)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--coco", required=True, help="COCO-format root (annotations/, train2017/)")
    p.add_argument("--model", required=True, help="model config as JSON")
    p.add_argument("--train", required=True, help="detection training config as JSON")
    p.add_argument("--init", choices=["scratch", "pretrained"], required=True)
    p.add_argument("--backbone", help="pre-trained backbone checkpoint (init=pretrained, start=0)")
    p.add_argument("--resume", help="checkpoint at iteration --start")
    p.add_argument("--resume-job", help="the last checkpoint of the job that wrote --resume: removed "
                   "with it if --resume is corrupt, so that the workflow retrains both")
    p.add_argument("--start-iter", type=int, required=True, help="iteration the segment starts at")
    p.add_argument("--end-iter", type=int, required=True, help="iteration it ends (and checkpoints) at")
    p.add_argument("--schedule-iters", type=int, default=0,
                   help="length T of the schedule this segment belongs to; 0 = trunk (no LR drops)")
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--gpus", type=int, default=0, help="GPUs this job was given (its gpu resource): without a working CUDA it stops at once")
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--layout-stats", help="the layout check's JSON: its skipped (corrupt) images are left out")
    p.add_argument("--train-annotations", help="train on this COCO annotation file (a less-data subset, "
                   "or a keypoint model's person_keypoints file) instead of the root's instances_train2017.json")
    p.add_argument("--val-annotations", help="evaluate on this annotation file instead of the root's "
                   "instances_val2017.json (a keypoint model: its person_keypoints file)")
    p.add_argument("--checkpoints", type=int, nargs="*", default=[],
                   help="further checkpoints to write on the way, inside (start, end), next to --out")
    p.add_argument("--eval-settings", metavar="JSON",
                   help="how to score every checkpoint written, in this process "
                        "(rethink.core.config.training_eval_settings: in_training, the inference-only "
                        "model keys, extra_by_variant, batch_size, backend, curve_images)")
    p.add_argument("--eval-dir", help="the branch's eval folder: results go to EVAL_DIR/iter_N/from_training/")
    p.add_argument("--given-backbone", metavar="JSON",
                   help="the study's given backbone (rethink.core.config.given_backbone_settings; null: "
                        "none), checked by a scratch branch's first job")
    p.add_argument("--variant", default="main", help="recorded with the evaluations")
    p.add_argument("--seed", type=int, default=0, help="recorded with the evaluations")
    p.add_argument("--branch", default="", help="recorded with the evaluations")
    p.add_argument("--phases-out", help="write the job's time per phase (start-up, setup, training, "
                   "checkpoint writes, evaluation) to this JSON file")
    args = p.parse_args(argv)
    startup_s = process_age_s()
    if not 0 <= args.start_iter < args.end_iter:
        p.error(f"need 0 <= --start-iter < --end-iter, got {args.start_iter}, {args.end_iter}")
    model_cfg, train_cfg = json_arg(args.model, "model"), json_arg(args.train, "train")
    if args.init == "scratch" and args.start_iter == 0 and args.given_backbone:
        check_given_for_scratch(model_cfg, settings_arg(args.given_backbone, "given-backbone"))
    scoring = settings_arg(args.eval_settings, "eval-settings") if args.eval_settings else {"in_training": False}
    world, device = distributed.init(setup(args.threads, args.device, gpus=args.gpus,
                                           resource_key="resources.train.gpu"))
    total = args.schedule_iters or None
    print(f"training {args.init} iterations {args.start_iter}->{args.end_iter} "
          f"({'trunk' if total is None else f'schedule of {total}'}) on {device}, "
          f"{args.threads} threads", flush=True)
    evaluate = None
    phases = {"startup_s": startup_s}
    if scoring["in_training"] and world.size > 1:
        # rank 0 scoring a checkpoint would hold the other ranks in the next collective for
        # as long as it takes (a TTA pass over val2017: past any timeout): the evaluate jobs
        # score this job's checkpoints instead, on their own GPUs, while training goes on
        print(f"{world.size} training processes: checkpoints are scored by the evaluate jobs, "
              f"not in training", flush=True)
        scoring = {"in_training": False}
    if scoring["in_training"] and world.main:
        if not args.eval_dir:
            p.error("--eval-settings needs --eval-dir")
        t = time.perf_counter()
        from rethink.evaluation.evaluate import CheckpointEvaluator, summary_line
        extra = dict(scoring["extra"])
        if not model_cfg.get("keypoints"):  # OKS sigmas: an inference-only key of keypoint models alone
            extra.pop("oks_sigmas", None)
        extra.update(scoring["extra_by_variant"].get(args.variant, {}))
        evaluator = CheckpointEvaluator(args.coco, {**model_cfg, **extra},
                                        scoring["batch_size"], scoring["backend"], args.device,
                                        device, args.layout_stats, args.val_annotations,
                                        curve_images=scoring["curve_images"])
        phases["eval_setup_s"] = time.perf_counter() - t
        record = {"variant": args.variant, "seed": args.seed, "init": args.init, "branch": args.branch}

        def evaluate(model, iteration, path):
            m = evaluator(model.state_dict(), path, Path(args.eval_dir) / f"iter_{iteration:06d}",
                          {**record, "iteration": iteration}, end=total is not None and iteration == total)
            print(f"evaluated {path}: {summary_line(m)}", flush=True)
    try:
        train_segment(args.coco, model_cfg, train_cfg, args.init, args.start_iter, args.end_iter, total,
                      args.out, resume=args.resume, backbone=args.backbone, device=device,
                      log_every=args.log_every, num_workers=args.workers,
                      meta={"init": args.init, "schedule_iters": total},
                      skip_ids=skipped_image_ids(args.layout_stats, "train"), world=world,
                      train_annotations=args.train_annotations, checkpoints=args.checkpoints,
                      after_checkpoint=evaluate, phases=phases, resume_job=args.resume_job)
        if args.phases_out and world.main:
            write_json(args.phases_out, {k: round(v, 3) if isinstance(v, float) else v
                                         for k, v in phases.items()})
    except RuntimeError as e:  # a worker death signalled outside next(): iteration unknown
        if "DataLoader" in str(e):
            raise loader_failure(e, "?", args.start_iter, args.end_iter) from e
        raise
    finally:
        distributed.shutdown(world)


if __name__ == "__main__":
    run_job(main)
