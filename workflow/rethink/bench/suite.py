"""Benchmark suite: how fast each stage is against the obvious alternative and the machine's
limit, measured side by side in one run; writes JSON and a Markdown summary next to it.

    PYTHONPATH=workflow python -m rethink.bench.suite --out results/benchmarks/suite.json
    PYTHONPATH=workflow python -m rethink.bench.suite --quick --out /tmp/suite.json   # ~1 min
    PYTHONPATH=workflow python -m rethink.bench.suite --only training,evaluation --out ...

Parts (--only): training (the config's step vs the step before issue 31 and a plain
torchvision loop, each speed option's gain, padding waste, data wait, profile, torch.compile,
FLOP rate vs sgemm), evaluation (faster-coco-eval vs pycocotools), loaders (images/s per loader
worker at COCO and ImageNet sizes, workers per GPU for the GPU goals), loader_memory (each loader
worker's private memory with the annotation index as arrays and as pycocotools' COCO object, on a
COCO-sized annotation file), pipeline (Snakemake DAG build,
no-op, one-figure rebuild), cost_model (start-up per job, evaluation per checkpoint,
training per iteration and overhead share of a reduced study, in the job layout before the
training jobs evaluated their own checkpoints and now), forking (iterations forked vs separate), scaling (wall time of a
reduced study as data and schedules grow), gpu (rethink.engine.gpu_check; "no GPU: skipped" here).
Timings are medians of repeats and comparisons are ratios of interleaved runs: the machines
are shared. --quick shrinks every part (tiny model, few images, no complete Snakemake runs).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from rethink.bench import common, cost_model, evaluation, forking, loader_memory, loaders, pipeline, training
from rethink.core.atomic import write_json, write_text

PARTS = ("training", "evaluation", "loaders", "loader_memory", "pipeline", "cost_model", "forking", "scaling",
         "gpu")

# --quick: the tests' tiny model and data (tests/tiny.py), so the suite runs in about a minute
QUICK_MODEL = {"width": 16, "fpn_channels": 16, "box_head": {"convs": 1, "conv_channels": 16, "fc": 32},
               "mask_head": {"convs": 1, "channels": 16},
               "rpn": {"pre_nms_train": 100, "post_nms_train": 50, "pre_nms_test": 100,
                       "post_nms_test": 50, "batch_per_image": 64},
               "rois_per_image": 32, "min_size": 64, "max_size": 96}
QUICK_SYNTH = {"classes": 4, "detection_classes": 2, "det_min_size": 64, "det_max_size": 96,
               "det_max_objects": 3}
GPU_ARGS = ["--iters", "20", "--batch", "2", "--pretrain-batch", "128", "--skip-without-gpu"]  # the preset's 2 images per GPU


def settings(quick: bool) -> dict:
    if quick:
        return {"iters": 2, "warmup": 1, "repeats": 1, "profile_iters": 1, "sgemm_n": 256, "compile": False,
                "sgemm_repeats": 3, "eval_images": 60, "eval_repeats": 1, "pipeline_repeats": 1,
                "flop_batches": 1, "cost_model_repeats": 1}
    return {"iters": 10, "warmup": 2, "repeats": 5, "profile_iters": 3, "sgemm_n": 2048, "compile": True,
            "sgemm_repeats": 5, "eval_images": 3000, "eval_repeats": 3, "pipeline_repeats": 3,
            "flop_batches": 2, "cost_model_repeats": 2}


def study_settings(config: dict, quick: bool):
    model = dict(config["model"])
    det = dict(config["detection"])
    syn = dict(config["data"]["synthetic"])
    if quick:
        model.update(QUICK_MODEL)
        det.update(batch_size=2)
        syn.update(QUICK_SYNTH)
    return model, det, syn


def part_training(work: Path, config: dict, quick: bool, s: dict) -> dict:
    model_cfg, det, syn = study_settings(config, quick)
    threads = int(config["threads"]["train"])
    workers = int(det.get("workers", 0))
    bs = det["batch_size"]
    # the study's own train set size, so that batches are grouped (and padded) as in a run
    n_train = max(bs * (s["warmup"] + s["iters"]), 4 * bs if quick else int(syn["det_train_images"]))
    root = training.synthetic_coco(work / "train_coco", syn, n_train=n_train)
    out = {"model": model_cfg, "batch_size": bs, "threads": threads, "workers": workers,
           "train_images": n_train}
    thr = out["throughput"] = training.throughput(root, model_cfg, det, threads, workers, s["iters"],
                                                  s["warmup"], s["repeats"], work)
    mine = thr["config_arm"]
    out["profile"] = training.profile_step(root, model_cfg, det, threads, s["profile_iters"])
    out["flops"] = training.flop_rate(root, model_cfg, {
        name: ({**det, **thr["arms"][name]["settings"]}, thr["arms"][name]["s_per_iter"])
        for name in dict.fromkeys(["baseline", mine])},
        threads, s["sgemm_n"], s["sgemm_repeats"], batches=s["flop_batches"])
    if s["compile"]:
        longest = max(det["schedules"]) * det["one_x"]  # the default's trunk: one job
        out["compile"] = training.compile_backbone(root, model_cfg, det, threads, s["iters"], longest)
    return out


def part_evaluation(work: Path, config: dict, quick: bool, s: dict) -> dict:
    model_cfg, _, syn = study_settings(config, quick)
    threads = int(config["threads"]["evaluate"])
    out = evaluation.compare(work / "val_coco", syn, s["eval_images"], s["eval_repeats"], threads)
    # one checkpoint's whole evaluation, before issue 31 and now (a seeded random init: no
    # trained checkpoint here; `python -m rethink.bench.evaluation --checkpoint` takes one)
    root = work / "val_checkpoint"
    evaluation.synthetic_val(root, syn, 8 if quick else 100)
    out["checkpoint"] = evaluation.checkpoint(root, {**model_cfg, **{k: config["model"][k] for k in (
        "score_thresh", "detections_per_img")}}, None, int(config["evaluate"]["batch_size"]),
        threads=threads, repeats=s["eval_repeats"], workers=(0,))
    return out


def part_gpu(work: Path) -> dict:
    out_json = work / "gpu_check.json"
    cmd = [sys.executable, "-m", "rethink.engine.gpu_check", *GPU_ARGS, "--out", str(out_json)]
    seconds, proc = common.run_timed(cmd, common.ROOT, timeout=1200)
    result = json.loads(out_json.read_text()) if out_json.exists() else {}
    lines = (proc.stdout or "").strip().splitlines()
    return {"gpu_command": "PYTHONPATH=workflow " + common.shown(cmd).replace(str(out_json), "gpu_check.json"),
            "stdout": lines[-12:], "seconds": common.rnd(seconds, 1),
            "skipped": bool(result.get("skipped")), "result": result}


def study_estimate(results: dict) -> dict | None:
    """The configured study's training time before and after this suite's speed fix,
    from the forked iterations and the measured s/iter of each arm (an estimate)."""
    try:
        thr = results["training"]["throughput"]
        iters = results["forking"]["configured_study"]["forked_iterations"]
    except (KeyError, TypeError):
        return None
    after = thr["arms"][thr["config_arm"]]["s_per_iter"]
    before = after * thr["ratio_config_vs_baseline"]
    return {"forked_iterations": iters, "s_per_iter_before": common.rnd(before, 4),
            "s_per_iter_after": after, "train_seconds_before": common.rnd(iters * before, 1),
            "train_seconds_after": common.rnd(iters * after, 1),
            "ratio_before_vs_after": thr["ratio_config_vs_baseline"],
            "note": "training jobs' compute only (forked iterations x measured s/iter, 1 thread "
                    "per job); evaluation is also faster (COCOeval part) by the evaluation ratio"}


def run(parts, quick: bool, work: Path, out: Path, config: dict) -> dict:
    s = settings(quick)
    base = f"PYTHONPATH=workflow python -m rethink.bench.suite{' --quick' if quick else ''}"
    results = {
        "suite": "rethink.bench.suite", "quick": quick, "settings": s,
        "command": f"{base} --out {out}",
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "torch": torch.__version__,
                    "load_average_start": common.load_average(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "parts": {},
    }
    t_start = time.perf_counter()
    for part in parts:
        print(f"[benchmark] {part} ...", flush=True)
        t0 = time.perf_counter()
        entry = {"command": f"{base} --only {part} --out {out}"}
        try:
            if part == "training":
                entry.update(part_training(work, config, quick, s))
            elif part == "evaluation":
                entry.update(part_evaluation(work, config, quick, s))
            elif part == "loaders":
                entry.update(loaders.run(work, dict(config["data"]["synthetic"]), 8 if quick else 48,
                                         1 if quick else 3))
            elif part == "loader_memory":  # COCO train2017's counts; --quick: ~20k instances
                sizes = (3000, 20_000) if quick else (118_000, 860_000)
                entry.update(loader_memory.run(work / "loader_memory", *sizes))
            elif part == "pipeline":
                entry.update(pipeline.run_all(work, s["pipeline_repeats"], quick))
            elif part == "cost_model":
                if quick:
                    entry["skipped"] = "--quick: no complete Snakemake runs"
                else:
                    entry.update(cost_model.run(work, s["cost_model_repeats"]))
            elif part == "forking":
                thr = results["parts"].get("training", {}).get("throughput")
                s_iter = thr["arms"][thr["config_arm"]]["s_per_iter"] if thr and not quick else None
                entry.update(forking.savings(config, s_iter))
            elif part == "scaling":
                if quick:
                    entry["skipped"] = "--quick: no complete Snakemake runs"
                else:
                    base_run = results["parts"].get("pipeline", {}).get("complete_run", {})
                    entry.update(pipeline.scaling(work, base_run.get("seconds")))
            elif part == "gpu":
                entry.update(part_gpu(work))
            entry["status"] = "ok"
        except Exception as e:  # one part failing leaves the others' numbers
            entry.update(status="error", error=f"{type(e).__name__}: {e}",
                         traceback=traceback.format_exc()[-3000:])
            print(f"[benchmark] {part} failed: {e}", flush=True)
        entry["part_seconds"] = common.rnd(time.perf_counter() - t0, 1)
        results["parts"][part] = entry
        print(f"[benchmark] {part}: {entry['status']} in {entry['part_seconds']} s", flush=True)
    est = None if quick else study_estimate(results["parts"])
    if est:
        results["study_estimate"] = est
    results["machine"]["load_average_end"] = common.load_average()
    results["wall_seconds"] = common.rnd(time.perf_counter() - t_start, 1)
    return results


def _pct(x):
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _goal(ok):
    return "met" if ok else "NOT met"


def training_markdown(e: dict) -> list[str]:
    t = e["throughput"]
    mine = t["config_arm"]
    md = [f"Model depth {e['model']['depth']}, width {e['model']['width']}, batch "
          f"{e['batch_size']}, {e['threads']} thread(s), {e['workers']} loader workers, "
          f"{t['train_images']} train images; {t['iters_timed']} timed iterations after "
          f"{t['warmup_iters']}, {t['repeats']} repeats, arms interleaved. `baseline` is the step "
          f"before issue 31; each `+option` adds one to the arm above; the config's step is "
          f"`{mine}`.", "",
          "| arm | img/s | s/iter | vs baseline | padding waste | data wait |",
          "|---|---:|---:|---:|---:|---:|"]
    for arm, a in t["arms"].items():
        md.append(f"| {arm} | {a['img_per_s']} | {a['s_per_iter']} | {a.get('ratio_vs_baseline', '')} | "
                  f"{a.get('padding_waste', '')} | {_pct(a['data_wait_frac'])} |")
    md += ["", f"- the config's step vs the baseline: **{t['ratio_config_vs_baseline']}x** real "
           f"images per second (goal >= 2: {_goal(t['goals']['ratio_config_vs_baseline>=2.0'])}); "
           f"vs a plain torchvision loop: {t['ratio_config_vs_plain_torchvision']}x",
           f"- padding waste (padded / real pixels) over an epoch: {t['padding_waste_config_epoch']} "
           f"with the config's batches, {t['padding_waste_baseline_epoch']} without grouping "
           f"(goal <= 1.15: {_goal(t['goals']['padding_waste_config_epoch<=1.15'])})",
           f"- time the step waits on data: {_pct(t['data_wait_frac_config'])} "
           f"({t['data_load_s_per_batch']} s to load a batch; goal < 5%: "
           f"{_goal(t['goals']['data_wait_frac_config<0.05'])})", "",
           "| option | gain (vs the arm without it) | in the config |", "|---|---:|---|"]
    md += [f"| {o['option']} | {o['ratio_vs_without']}x | {'yes' if o['in_config'] else 'no'} |"
           for o in t["options"]]
    prof = e["profile"]
    md += ["", f"Profile of the config's step ({prof['s_per_iter_profiled']} s/iter under the "
           f"profiler, {prof['aten_calls_per_iter']} aten calls per step; RoIAlign backward "
           f"{prof['roi_align_backward_ms_per_iter']} ms/iter = {_pct(prof['roi_align_backward_share'])}; "
           f"torchvision's per-image matching and sampling ({', '.join(m for v in prof['matching_methods'].values() for m in v)}): "
           f"**{_pct(prof['matching_sampling_share'])}** of the step, all that batching it could save):", "",
           "| op | self ms/iter | share | calls/iter |", "|---|---:|---:|---:|"]
    md += [f"| `{o['op']}` | {o['ms_per_iter']} | {_pct(o['share'])} | {o['calls_per_iter']} |"
           for o in prof["top_self_cpu"]]
    f = e["flops"]
    md += ["", f"FLOP rate against sgemm {f['sgemm']['gflop_per_s_median']} GFLOP/s (torch.mm "
           f"{f['sgemm']['n']}^2, {f['sgemm']['threads']} thread, measured in this run) and a 3x3 "
           f"convolution {f['conv3x3']['gflop_per_s_median']} GFLOP/s (oneDNN, {f['conv3x3']['shape']}):", "",
           "| arm | GFLOP per step (padding included) | s/iter | GFLOP/s | share of sgemm | share of the better |",
           "|---|---:|---:|---:|---:|---:|"]
    md += [f"| {name} | {a['gflop_per_step']} | {a['s_per_iter_used']} | {a['step_gflop_per_s']} | "
           f"**{_pct(a['fraction_of_sgemm'])}** | {_pct(a['fraction_of_best_dense'])} |"
           for name, a in f["arms"].items()]
    if "compile" in e:
        c = e["compile"]
        md += ["", f"torch.compile of backbone and FPN: forward + backward {c['s_fwd_bwd_eager']} s "
               f"eager, {c['s_fwd_bwd_compiled']} s compiled ({c['ratio']}x); compiling one padded "
               f"shape took {c['compile_s']} s, and the train set has {c['padded_shapes']}: "
               f"{'kept' if c['kept'] else 'not kept'} ({c['why']})."]
    md.append("")
    return md


def markdown(r: dict) -> str:
    p = r["parts"]
    md = [f"# Benchmark suite{' (--quick)' if r['quick'] else ''}", "",
          f"`{r['command']}` — {r['created']}, {r['machine']['cpus']} CPUs, torch "
          f"{r['machine']['torch']}, load average {r['machine']['load_average_start']} at start, "
          f"{r['machine'].get('load_average_end')} at end; {r.get('wall_seconds')} s in all.",
          "Timings are medians of repeats; ratios are medians of per-repeat ratios of interleaved "
          "runs. Each part's command reruns it alone.", ""]
    for name, e in p.items():
        md += [f"## {name}", "", f"`{e['command']}` ({e.get('part_seconds')} s)", ""]
        if e.get("status") == "error":
            md += [f"**error**: {e['error']}", ""]
            continue
        if e.get("skipped") and name != "gpu":
            md += [f"skipped: {e['skipped']}", ""]
        if name == "training":
            md += training_markdown(e)
        elif name == "loaders":
            r = e["img_per_s_per_worker"]
            md += [f"One loader worker (one core), {e['images']} images, best of {e['repeats']}:", "",
                   "| items | img/s per worker |", "|---|---:|"]
            md += [f"| {k} | {v} |" for k, v in r.items()]
            md += ["", f"Workers (cores) per GPU to feed {e['goals']['coco_img_per_s_per_gpu']:g} img/s of "
                   f"Mask R-CNN: **{e['workers_per_gpu']['detection']}**; to feed "
                   f"{e['goals']['imagenet_img_per_s_per_gpu']:g} img/s of ImageNet pre-training: "
                   f"**{e['workers_per_gpu']['pretrain']}**.", ""]
        elif name == "loader_memory":
            d = e["data"]
            md += [f"{d['images']} images, {d['instances']} instances (synthetic, {d['vertices']}-vertex "
                   f"polygons), {e['workers']} DataLoader workers each building every image's target; "
                   f"each worker's USS in MiB (mean over workers):", "",
                   "| index | built in (s) | after its first target | after every target | "
                   "after a full collection | growth from reading the index |", "|---|---:|---:|---:|---:|---:|"]
            md += [f"| {kind} | {k['index_build_s']} | {k['start_mb']} | {k['touched_mb']} | {k['end_mb']} | "
                   f"{k['touch_growth_mb']} |" for kind, k in e["kinds"].items()]
            md += ["", f"Per worker, pycocotools' COCO object vs the arrays: "
                   f"**{e['ratio_uss_pycocotools_vs_arrays']}x** the memory, "
                   f"{e['ratio_touch_growth_pycocotools_vs_arrays']}x the growth from reading the index; "
                   f"the arrays without vs with gc.freeze() before the fork (as training does): "
                   f"**{e['ratio_uss_arrays_vs_frozen']}x** the memory "
                   f"(`{e['module_command']}`).", ""]
        elif name == "evaluation":
            md += [f"{e['images']} synthetic val images, {e['gt_annotations']} objects, "
                   f"{e['detections']} detections; {e['threads']} thread(s), {e['repeats']} repeats.", "",
                   "| backend | seconds (bbox + segm) |", "|---|---:|"]
            md += [f"| {b} | {sec} |" for b, sec in e["seconds"].items()]
            md += ["", f"- faster-coco-eval vs pycocotools: **{e['speedup_faster_vs_pycocotools']}x** "
                   f"(goal >= 3: {_goal(e['goals']['speedup>=3'])})",
                   f"- largest difference of the 12 numbers (bbox and segm): "
                   f"{e['max_abs_diff_12_stats']:.3g}; per-category AP: "
                   f"{e['max_abs_diff_per_category_ap']:.3g} (identical to 1e-6: "
                   f"{_goal(e['goals']['identical_to_1e-6'])})", ""]
            c = e["checkpoint"]
            md += [f"One checkpoint's evaluation ({c['images']} val images, a seeded random init, "
                   f"{c['detections']} detections, {c['threads']} thread(s), {c['repeats']} repeats, "
                   f"interleaved): {c['seconds']['before']} s before issue 31, "
                   f"{c['seconds']['workers=0']} s now: **{c['ratio_before_vs_now']['workers=0']}x** "
                   f"(goal >= 1.5); numbers and results files identical: "
                   f"{_goal(c['goals']['identical'])}.", ""]
        elif name == "pipeline":
            md += ["| measure | command | seconds | jobs |", "|---|---|---:|---:|"]
            for key in ("job_startup", "dag_default", "dag_coco_preset", "complete_run", "noop",
                        "figure_rebuild"):
                m = e.get(key)
                if not m:
                    continue
                if "skipped" in m:
                    md.append(f"| {key} | skipped: {m['skipped']} | | |")
                    continue
                jobs = m.get("jobs", m.get("jobs_rerun", {}).get("total", ""))
                md.append(f"| {key} | `{m['command']}` | {m['seconds']} | {jobs if jobs is not None else ''} |")
            if "noop" in e:
                md.append(f"\nNo-op goal <= 5 s: {_goal(e['noop']['goals']['noop<=5s'])}.")
            md.append("")
        elif name == "cost_model" and "arms" in e:
            md += [f"Reduced study: {e['reduced_study']}; wall ratio per-checkpoint layout vs now: "
                   f"**{e['ratio_wall_per_checkpoint_vs_now']}x**.", "",
                   "| layout | wall (s) | training jobs | evaluate jobs | start-up per job (s) | "
                   "training per iteration (s) | evaluation per checkpoint (s) | overhead |",
                   "|---|---:|---:|---:|---:|---:|---:|---:|"]
            md += [f"| {arm} | {a['wall_s']} | {a['training_jobs']} | {a['evaluate_jobs']} | "
                   f"{a['startup_s_per_job']} | {a['train_s_per_iteration']} | "
                   f"{a['evaluation_s_per_checkpoint']} | {_pct(a['overhead_share'])} |"
                   for arm, a in e["arms"].items()]
            md.append("")
        elif name == "forking":
            pp, st = e["paper_2x_6x"], e["configured_study"]
            md += [f"`{e['math_command']}`", "",
                   f"- paper's 2x-6x at 1x = {pp['one_x']}: {pp['forked_iterations']} iterations "
                   f"forked ({pp['forked_in_1x']}x) vs {pp['separate_iterations']} separate "
                   f"({pp['separate_in_1x']}x): {pp['ratio_separate_vs_forked']}x fewer",
                   f"- configured study ({st['inits']} inits x {st['seeds']} seed(s), variants "
                   f"{', '.join(st['variants'])}): {st['forked_iterations']} forked vs "
                   f"{st['separate_iterations']} separate iterations"]
            if "saved_train_seconds_estimate" in st:
                md.append(f"- at {st['s_per_iter_measured']} s/iter (measured, ours): "
                          f"{st['saved_train_seconds_estimate']} s of training saved "
                          f"({st['forked_train_seconds_estimate']} s instead of "
                          f"{st['separate_train_seconds_estimate']} s)")
            md.append("")
        elif name == "scaling" and "points" in e:
            for axis, pts in e["points"].items():
                fit = e["fit_seconds_vs_factor"][axis]
                md += [f"{axis}: seconds = {fit['intercept']} + {fit['slope']} x factor "
                       f"(R^2 {fit['r2']})", "", "| factor | seconds |", "|---:|---:|"]
                md += [f"| {q['factor']} | {q['seconds']} |" for q in pts]
                md.append("")
        elif name == "gpu":
            md += [f"`{e['gpu_command']}`:", "", "```", *e.get("stdout", []), "```", ""]
    if "study_estimate" in r:
        est = r["study_estimate"]
        md += ["## Configured study, training compute", "",
               f"{est['forked_iterations']} forked iterations: {est['train_seconds_before']} s "
               f"with the step before issue 31, {est['train_seconds_after']} s with the config's "
               f"(**{est['ratio_before_vs_after']}x**); {est['note']}.", ""]
    return "\n".join(md)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results/benchmarks/suite.json",
                   help="results JSON; the Markdown summary goes next to it (.md)")
    p.add_argument("--quick", action="store_true", help="small sizes, no complete Snakemake runs")
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {PARTS}")
    p.add_argument("--work", help="scratch folder (default: a temporary one, removed after)")
    args = p.parse_args(argv)
    parts = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        p.error(f"unknown part(s) {unknown}; choose from {PARTS}")
    parts = [x for x in PARTS if x in parts]  # forking uses training's s/iter, scaling pipeline's run
    out = Path(args.out)
    config = common.load_config()
    with tempfile.TemporaryDirectory(prefix="rethink-bench-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = run(parts, args.quick, work, out, config)
    results["command"] = "PYTHONPATH=workflow python -m rethink.bench.suite " + shlex.join(
        argv if argv is not None else sys.argv[1:])
    write_json(out, results)
    write_text(out.with_suffix(".md"), markdown(results) + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}", flush=True)
    return 1 if any(e.get("status") == "error" for e in results["parts"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
