"""Forked and resumed training give the same weights as one uninterrupted run."""
import pytest
import torch

from rethink import checkpoint, synth
from rethink.runtime import setup
from rethink.train import train_segment
from tiny import tiny


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    synth_cfg, _, _ = tiny()
    root = tmp_path_factory.mktemp("data") / "coco"
    synth.generate_coco(root, synth_cfg, seed=3)
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
