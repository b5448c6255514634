"""Forked and resumed training give the same weights as one uninterrupted run."""
import math
import os
import re
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from rethink.core.conventions import DETECTRON_BGR, IMAGENET_RGB
from rethink.data import world, writers
from rethink.engine import checkpoint
from rethink.engine.runtime import setup
from rethink.engine.train import train_segment
from rethink.models.detector import build_mask_rcnn
from rethink.models.roi_align import FastMultiScaleRoIAlign
from tiny import eval_settings, tiny


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    synth_cfg, _, _ = tiny()
    root = tmp_path_factory.mktemp("data") / "coco"
    writers.generate_coco(root, synth_cfg, seed=3)
    return root


def weights(path):
    return checkpoint.load(path)["model"]


def assert_bitwise_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def test_forked_and_resumed_segments_equal_an_uninterrupted_run(coco, tmp_path):
    _, model, train = tiny()
    setup(threads=1)  # deterministic algorithms on CPU
    total = 12  # schedule of 12 iterations with one_x=9: LR drops at 6 and 10
    run = lambda start, end, total, out, resume=None: train_segment(  # noqa: E731
        coco, model, train, "scratch", start, end, total, tmp_path / out, resume=resume, log_every=100)

    run(0, total, total, "straight.pt")
    # Trunk (no LR drops) in two segments, then the schedule's tail forked at its first drop.
    run(0, 4, None, "trunk4.pt")
    run(4, 6, None, "trunk6.pt", resume=tmp_path / "trunk4.pt")
    run(6, 9, total, "tail9.pt", resume=tmp_path / "trunk6.pt")
    run(9, total, total, "tail12.pt", resume=tmp_path / "tail9.pt")

    assert_bitwise_equal(weights(tmp_path / "straight.pt"), weights(tmp_path / "tail12.pt"))
    # And training really moved the weights.
    run(0, 1, total, "one.pt")
    assert not all(torch.equal(a, b) for a, b in zip(weights(tmp_path / "one.pt").values(),
                                                      weights(tmp_path / "straight.pt").values()))


def test_resume_refuses_a_checkpoint_from_another_iteration(coco, tmp_path):
    _, model, train = tiny()
    train_segment(coco, model, train, "scratch", 0, 2, None, tmp_path / "a.pt", log_every=100)
    with pytest.raises(SystemExit, match="iteration 2, segment starts at 3"):
        train_segment(coco, model, train, "scratch", 3, 4, None, tmp_path / "b.pt",
                      resume=tmp_path / "a.pt")
    assert not (tmp_path / "b.pt").exists()


def test_resume_and_backbone_with_other_input_conventions_are_refused(coco, tmp_path):
    _, model, train = tiny()
    train_segment(coco, model, train, "scratch", 0, 2, None, tmp_path / "a.pt", log_every=100)
    assert checkpoint.load(tmp_path / "a.pt")["meta"]["input"] == IMAGENET_RGB  # recorded
    bgr = {**model, "input": DETECTRON_BGR}
    with pytest.raises(SystemExit, match=r"a.pt was trained on input .*'RGB'.*conflicting input conventions"):
        train_segment(coco, bgr, train, "scratch", 2, 4, None, tmp_path / "b.pt", resume=tmp_path / "a.pt")
    backbone = tmp_path / "backbone.pt"
    state = checkpoint.load(tmp_path / "a.pt")["model"]
    body = {k.removeprefix("backbone.body."): v for k, v in state.items() if k.startswith("backbone.body.")}
    checkpoint.save({"model": body, "meta": {"input": IMAGENET_RGB}}, backbone)
    with pytest.raises(SystemExit, match=r"backbone .*backbone.pt was trained on input .*conflicting"):
        train_segment(coco, bgr, train, "pretrained", 0, 2, None, tmp_path / "c.pt", backbone=backbone)
    assert not (tmp_path / "b.pt").exists() and not (tmp_path / "c.pt").exists()


def test_bf16_on_cpu_trains_with_finite_losses_through_our_roi_align(coco, tmp_path, capsys):
    _, model, train = tiny()
    train_segment(coco, model, {**train, "bf16": True}, "scratch", 0, 3, None, tmp_path / "bf16.pt",
                  log_every=1)  # a non-finite loss would stop it (check_finite)
    out = capsys.readouterr().out
    assert "bf16 autocast on CPU" in out
    losses = [float(m) for m in re.findall(r"iter \d+/3 loss=([0-9.na]+)", out)]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    built = build_mask_rcnn(model, 2)
    assert isinstance(built.roi_heads.box_roi_pool, FastMultiScaleRoIAlign)  # ours, forward and backward


def test_non_finite_loss_stops_with_iteration_terms_and_hint(coco, tmp_path):
    _, model, train = tiny()
    train.update(base_lr=1e6, warmup_iters=0)
    with pytest.raises(FloatingPointError, match=r"not finite at iteration \d+: .*loss_classifier.*lower base_lr"):
        train_segment(coco, model, train, "scratch", 0, 8, None, tmp_path / "nan.pt", log_every=100)
    assert not (tmp_path / "nan.pt").exists()


class NotAWeight:
    def __reduce__(self):  # what a malicious checkpoint would do on unpickling
        return (print, ("code ran while loading a checkpoint",))


def test_checkpoints_are_loaded_weights_only(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": NotAWeight()}, evil)
    with pytest.raises(RuntimeError, match="objects other than tensors.*weights_only=True"):
        checkpoint.load(evil)
    truncated = tmp_path / "cut.pt"
    torch.save({"model": {"w": torch.ones(1000)}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:500])
    with pytest.raises(RuntimeError, match="cut.pt is corrupt or truncated"):
        checkpoint.load(truncated)


def test_one_job_writing_several_checkpoints_equals_separate_segments(coco, tmp_path):
    _, model, train = tiny()
    setup(threads=1)
    (tmp_path / "job").mkdir()
    (tmp_path / "seg").mkdir()
    train_segment(coco, model, train, "scratch", 0, 6, None, tmp_path / "job/iter_000006.pt",
                  checkpoints=[2, 4], log_every=100)
    start = 0
    for end in (2, 4, 6):
        train_segment(coco, model, train, "scratch", start, end, None, tmp_path / f"seg/iter_{end:06d}.pt",
                      resume=tmp_path / f"seg/iter_{start:06d}.pt" if start else None, log_every=100)
        start = end
    for it in (2, 4, 6):
        a, b = (checkpoint.load(tmp_path / f"{d}/iter_{it:06d}.pt") for d in ("job", "seg"))
        assert_bitwise_equal(a["model"], b["model"])
        assert a["iteration"] == it and a["optimizer"].keys() == b["optimizer"].keys()
    with pytest.raises(SystemExit, match="inside"):
        train_segment(coco, model, train, "scratch", 0, 4, None, tmp_path / "x.pt", checkpoints=[4])


def test_training_jobs_evaluation_equals_the_cli_and_is_adopted(coco, tmp_path):
    """The job's own evaluation of each checkpoint: the same numbers and detections as
    rethink.evaluation.evaluate on that checkpoint; the evaluate job adopts it, and evaluates afresh
    when a setting differs."""
    import json

    from rethink.engine.train import main as train_main
    from rethink.evaluation import job, outputs

    _, model, train = tiny()
    eval_extra = {"score_thresh": 0.0, "detections_per_img": 20}
    base = ["--coco", str(coco), "--model", json.dumps(model), "--train", json.dumps(train),
            "--init", "scratch", "--start-iter", "0", "--end-iter", "4", "--checkpoints", "2",
            "--out", str(tmp_path / "ckpt/iter_000004.pt"), "--log-every", "100",
            *eval_settings(eval_extra, batch_size=2), "--eval-dir", str(tmp_path / "eval"),
            "--phases-out", str(tmp_path / "phases.json")]
    train_main(base)
    phases = json.loads((tmp_path / "phases.json").read_text())
    assert phases["iterations"] == 4 and phases["eval_s"] > 0 and phases["train_s"] > 0
    eval_model = json.dumps({**model, **eval_extra})

    def cli(it, out, batch_size=2):
        args = ["--coco", str(coco), "--model", eval_model, "--checkpoint",
                str(tmp_path / f"ckpt/iter_{it:06d}.pt"), "--iteration", str(it), "--init", "scratch",
                "--batch-size", str(batch_size), "--out-metrics", str(out / "metrics.json"),
                "--out-bbox", str(out / "bbox_results.json"), "--out-segm", str(out / "segm_results.json")]
        assert job.main(args) in (0, None)
        return {n: json.loads((out / n).read_text()) for n in outputs.files(("bbox", "segm"))}

    for it in (2, 4):
        from_training = tmp_path / f"eval/iter_{it:06d}/from_training"
        assert (from_training / "metrics.json").is_file()
        adopted = cli(it, from_training.parent)  # the evaluate rule's outputs: next to it
        assert not from_training.exists()  # moved into place
        assert adopted["metrics.json"]["checkpoint_identity"]["size"] > 0
        # the same checkpoint scored from scratch by the CLI (nothing to adopt any more)
        fresh = cli(it, tmp_path / f"fresh{it}")
        assert "checkpoint_identity" not in fresh["metrics.json"]
        assert fresh["bbox_results.json"] == adopted["bbox_results.json"]
        assert fresh["segm_results.json"] == adopted["segm_results.json"]
        for key in ("bbox", "segm", "per_category", "num_detections", "evaluation", "iteration"):
            assert fresh["metrics.json"][key] == adopted["metrics.json"][key], key
    # a rerun of the job (its last checkpoint gone, as Snakemake removes it) goes on from its
    # own checkpoint at 2 (same lineage), retraining and re-scoring 4 only
    (tmp_path / "ckpt/iter_000004.pt").unlink()
    train_main(base)
    assert json.loads((tmp_path / "phases.json").read_text())["resumed_from"] == 2
    assert not (tmp_path / "eval/iter_000002/from_training").exists()
    # another evaluation setting: not adopted, evaluated here; the job's result stays
    other = cli(4, tmp_path / "eval/iter_000004", batch_size=1)
    assert other["metrics.json"]["evaluation"]["batch_size"] == 1
    assert "checkpoint_identity" not in other["metrics.json"]
    assert (tmp_path / "eval/iter_000004/from_training/metrics.json").is_file()


def test_curve_checkpoints_are_scored_on_the_first_val_images_and_the_schedule_end_on_all(coco, tmp_path):
    """evaluate.curve_images: a checkpoint inside a schedule draws a curve (first N val
    images); the schedule's end, which the claims use, is scored on the whole val set. The
    evaluate entry point adopts each only with the same --val-images."""
    import json

    from rethink.engine.train import main as train_main
    from rethink.evaluation import job

    _, model, train = tiny()
    eval_extra = {"score_thresh": 0.0, "detections_per_img": 20}
    train_main(["--coco", str(coco), "--model", json.dumps(model), "--train", json.dumps(train),
                "--init", "scratch", "--start-iter", "0", "--end-iter", "4", "--schedule-iters", "4",
                "--checkpoints", "2", "--out", str(tmp_path / "ckpt/iter_000004.pt"), "--log-every", "100",
                *eval_settings(eval_extra, batch_size=2, curve_images=1),
                "--eval-dir", str(tmp_path / "eval")])
    n_val = len(json.loads((coco / "annotations/instances_val2017.json").read_text())["images"])
    assert n_val > 1
    made = {it: json.loads((tmp_path / f"eval/iter_{it:06d}/from_training/metrics.json").read_text())
            for it in (2, 4)}
    assert made[2]["num_images"] == 1 and made[2]["evaluation"]["val_images"] == 1
    assert made[4]["num_images"] == n_val and made[4]["evaluation"]["val_images"] is None

    def cli(it, *extra):
        out = tmp_path / f"eval/iter_{it:06d}"
        args = ["--coco", str(coco), "--model", json.dumps({**model, **eval_extra}), "--checkpoint",
                str(tmp_path / f"ckpt/iter_{it:06d}.pt"), "--iteration", str(it), "--init", "scratch",
                "--batch-size", "2", "--out-metrics", str(out / "metrics.json"),
                "--out-bbox", str(out / "bbox_results.json"), "--out-segm", str(out / "segm_results.json"), *extra]
        assert job.main(args) in (0, None)
        return json.loads((out / "metrics.json").read_text())

    assert "checkpoint_identity" not in cli(2)  # all images asked for: scored afresh, not adopted
    adopted = cli(2, "--val-images", "1")
    assert "checkpoint_identity" in adopted and adopted["num_images"] == 1
    assert "checkpoint_identity" in cli(4)


def test_a_full_disk_stops_the_job_cleanly_and_it_resumes_once_space_is_freed(coco, tmp_path, monkeypatch):
    """torch.save reports ENOSPC as a RuntimeError ("unexpected pos ..."); the job must stop
    with a message naming the checkpoint and the space it needs, keep nothing half-written,
    and the same job rerun later must end bitwise where an uninterrupted one does."""
    from pathlib import Path

    from rethink.core import atomic
    _, model, train = tiny()
    setup(threads=1)
    run = lambda folder: train_segment(coco, model, train, "scratch", 0, 6, None,  # noqa: E731
                                       tmp_path / folder / "iter_000006.pt", checkpoints=[2, 4],
                                       log_every=100)
    run("straight")
    real_save = torch.save

    def disk_fills_at_4(state, f, *args, **kwargs):
        if state.get("iteration") == 4:
            Path(f).write_bytes(b"PK\x03\x04" + bytes(300))  # what got out before the disk filled
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
        return real_save(state, f, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(torch, "save", disk_fills_at_4)
        m.setattr(atomic, "_free_bytes", lambda folder: 4096)
        with pytest.raises(SystemExit) as e, atomic.disk_full_exits():
            run("job")
    msg = str(e.value)
    job = tmp_path / "job"
    assert f"no space left on the device of {job} to write iter_000004.pt" in msg
    assert "needs about" in msg and "MB is free" in msg and str(job / "iter_000004.pt") in msg
    assert sorted(p.name for p in job.iterdir()) == ["iter_000002.pt"]  # no temp, no half file
    run("job")  # space freed: the same job again
    for it in (2, 4, 6):
        assert_bitwise_equal(weights(tmp_path / f"straight/iter_{it:06d}.pt"),
                             weights(job / f"iter_{it:06d}.pt"))
    # an ENOSPC OSError from a writer is recognised the same way
    def enospc(tmp):
        raise OSError(28, "No space left on device")
    with pytest.raises(atomic.DiskFull, match="metrics.json: it needs about"):
        atomic.atomic_write(tmp_path / "metrics.json", enospc, size_hint=10_000)
    assert not list(tmp_path.glob(".metrics.json*"))


@pytest.mark.parametrize("body,code,stdout,stderr", [
    ("print('done', end='')\n    return 0", 0, "done", ""),   # unflushed output still gets out
    ("return 3", 3, "", ""),
    ("raise SystemExit('error: bad key x')", 1, "", "error: bad key x"),
    ("raise ValueError('boom')", 1, "", "ValueError: boom"),  # errors keep their traceback
])
def test_run_job_exits_fast_with_main_s_status_and_output(tmp_path, body, code, stdout, stderr):
    """A job's entry point skips the interpreter's ~1 s teardown but keeps what it printed and
    its exit status."""
    script = tmp_path / "job.py"
    script.write_text(f"from rethink.core.atomic import run_job\n\ndef main():\n    {body}\n\nrun_job(main)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow")}
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == code and r.stdout == stdout and stderr in r.stderr, r


def test_a_keypoint_model_trains_on_person_keypoints_flips_them_and_its_evaluation_is_adopted(coco, tmp_path):
    """The keypoint task: targets carry the file's keypoints, a flip swaps left and right,
    the job scores keypoint AP on the val file and the evaluate entry point adopts it."""
    import json

    from rethink.data.coco import CocoInstances, keypoint_flip_index, train_transforms
    from rethink.engine.train import main as train_main
    from rethink.evaluation import job, outputs

    ann = coco / "annotations"
    names = list(world.KEYPOINT_NAMES)
    plain = CocoInstances(coco, "train", ann_file=ann / "person_keypoints_train2017.json", keypoints=True)
    flipped = CocoInstances(coco, "train", train_transforms(1.0, keypoint_flip_index(plain.keypoint_names)),
                            ann_file=ann / "person_keypoints_train2017.json", keypoints=True)
    assert plain.keypoint_names == names
    (img, t), (_, f) = plain[0], flipped[0]
    width = img.shape[-1]
    left, right = names.index("left"), names.index("right")
    assert t["keypoints"].shape == (len(t["boxes"]), len(names), 3)
    assert torch.allclose(f["keypoints"][:, left, 0], width - t["keypoints"][:, right, 0])
    assert torch.equal(f["keypoints"][:, :, 2], t["keypoints"][:, keypoint_flip_index(names), 2])
    assert "keypoints" not in CocoInstances(coco, "train")[0][1]  # main's targets as before

    _, model, train = tiny()
    model["keypoints"] = {"num": len(names), "head": {"convs": 1, "channels": 16}}
    extra = {"score_thresh": 0.0, "detections_per_img": 20, "oks_sigmas": [0.07] * len(names)}
    out = tmp_path / "ckpt/iter_000002.pt"
    train_main(["--coco", str(coco), "--model", json.dumps(model), "--train", json.dumps(train),
                "--init", "scratch", "--start-iter", "0", "--end-iter", "2", "--out", str(out),
                "--train-annotations", str(ann / "person_keypoints_train2017.json"),
                "--val-annotations", str(ann / "person_keypoints_val2017.json"), "--log-every", "100",
                *eval_settings(extra, batch_size=2), "--eval-dir", str(tmp_path / "eval")])
    assert "roi_heads.keypoint_predictor.kps_score_lowres.weight" in weights(out)
    eval_dir = tmp_path / "eval/iter_000002"

    def cli(folder):
        args = ["--coco", str(coco), "--model", json.dumps({**model, **extra}), "--checkpoint", str(out),
                "--iteration", "2", "--init", "scratch", "--batch-size", "2",
                "--val-annotations", str(ann / "person_keypoints_val2017.json"),
                "--out-metrics", str(folder / "metrics.json"), "--out-bbox", str(folder / "bbox_results.json"),
                "--out-segm", str(folder / "segm_results.json"), "--out-keypoints", str(folder / "keypoints_results.json")]
        assert job.main(args) in (0, None)
        return {n: json.loads((folder / n).read_text()) for n in outputs.files(("bbox", "segm", "keypoints"))}

    adopted = cli(eval_dir)
    assert not (eval_dir / outputs.FROM_TRAINING).exists()  # moved into place
    fresh = cli(tmp_path / "fresh")
    assert "checkpoint_identity" in adopted["metrics.json"] and "checkpoint_identity" not in fresh["metrics.json"]
    assert fresh["keypoints_results.json"] == adopted["keypoints_results.json"]
    assert fresh["metrics.json"]["keypoints"] == adopted["metrics.json"]["keypoints"]
    assert len(adopted["metrics.json"]["keypoints"]) == 10
    kp = adopted["keypoints_results.json"][0]
    assert len(kp["keypoints"]) == 3 * len(names) and set(kp) == {"image_id", "category_id", "score", "keypoints"}
    # a keypoint count the file does not have, or sigmas missing, is a clear error
    with pytest.raises(SystemExit, match="names 5 keypoints, the model predicts 4"):
        cli_model = {**model, "keypoints": {"num": 4, "head": model["keypoints"]["head"]}}
        from rethink.evaluation.evaluate import val_dataset
        val_dataset(coco, cli_model, (), ann / "person_keypoints_val2017.json")
    with pytest.raises(SystemExit, match="keypoints.sigmas: 0 OKS sigmas for 5 keypoints"):
        from rethink.evaluation.evaluate import val_dataset
        val_dataset(coco, model, (), ann / "person_keypoints_val2017.json")


def test_training_applies_the_lr_decay_factor_at_each_drop(coco, tmp_path, capsys):
    """detection.lr_decay (a variant override: the paper's re-tuned x0.02) reaches the LR of
    every update after a drop; before the first drop nothing differs."""
    import json

    from rethink.engine.train import main as train_main

    _, model, train = tiny()  # 1x = 9 iterations: a 9-iteration schedule drops at 3 and 7
    lrs = {}
    for decay in (0.1, 0.02):
        out = tmp_path / f"d{decay}/iter_000004.pt"
        train_main(["--coco", str(coco), "--model", json.dumps(model), "--train", json.dumps({**train, "lr_decay": decay}),
                    "--init", "scratch", "--start-iter", "0", "--end-iter", "4", "--schedule-iters", "9",
                    "--out", str(out), "--log-every", "1"])
        lrs[decay] = [float(m) for m in re.findall(r"lr=([0-9.e-]+) \|", capsys.readouterr().out)]
    base = train["base_lr"] * train["batch_size"] / train["reference_batch"]
    assert len(lrs[0.1]) == 4 and lrs[0.1][:3] == lrs[0.02][:3]
    assert lrs[0.1][3] == pytest.approx(base * 0.1, rel=1e-3) and lrs[0.02][3] == pytest.approx(base * 0.02, rel=1e-3)
