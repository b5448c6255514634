"""Test-time augmentation (rethink.evaluation.tta): one augmentation is the plain inference path
exactly; flips and extra scales give valid, mirror-consistent detections."""
import pytest
import torch

from rethink.evaluation.tta import predict_tta
from rethink.models.detector import build_mask_rcnn
from tiny import tiny

NUM_CLASSES = 2


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(box_only=False, **model_keys):
    """A randomly initialised tiny Mask R-CNN that keeps every candidate (score_thresh 0),
    so it detects plenty without training."""
    torch.manual_seed(0)
    _, model_cfg, _ = tiny()
    model_cfg.update(model_keys)
    model = build_mask_rcnn(model_cfg, NUM_CLASSES).eval()
    model.roi_heads.score_thresh = 0.0
    if box_only:  # Faster R-CNN: torchvision's has_mask() is then False
        heads = model.roi_heads
        heads.mask_roi_pool = heads.mask_head = heads.mask_predictor = None
    return model


@pytest.fixture(scope="module")
def images():
    generator = torch.Generator().manual_seed(1)
    return [torch.rand(3, h, w, generator=generator) for h, w in ((60, 80), (72, 50), (64, 64))]


def plain(model, images):
    with torch.inference_mode():
        return model(images)


def assert_valid(detections, images, model, masks=True):
    for det, image in zip(detections, images):
        height, width = image.shape[-2:]
        boxes, scores, n = det["boxes"], det["scores"], len(det["boxes"])
        assert n and n <= model.roi_heads.detections_per_img
        assert boxes.shape == (n, 4) and det["labels"].shape == scores.shape == (n,)
        tol = 1e-3  # resize_boxes' float ratios, as in the plain path
        assert (boxes >= -tol).all() and (boxes[:, [0, 2]] <= width + tol).all()
        assert (boxes[:, [1, 3]] <= height + tol).all()
        assert (boxes[:, 2:] >= boxes[:, :2]).all()
        assert (scores[:-1] >= scores[1:]).all()
        assert ((det["labels"] >= 1) & (det["labels"] <= NUM_CLASSES)).all()
        if masks:
            assert det["masks"].shape == (n, 1, height, width)
            assert (det["masks"] >= 0).all() and (det["masks"] <= 1).all()
        else:
            assert "masks" not in det


@pytest.mark.parametrize("box_only", [False, True], ids=["mask", "box-only"])
def test_one_augmentation_is_the_plain_path(images, box_only):
    model = tiny_model(box_only)
    expected = plain(model, images)
    got = predict_tta(model, images, scales=[model.transform.min_size[-1]], flip=False)
    assert len(got) == len(expected)
    for det, ref in zip(got, expected):
        assert det.keys() == ref.keys()
        assert len(ref["boxes"]) > 0
        for key in ref:
            assert torch.equal(det[key], ref[key]), key


def test_no_detections(images):
    model = tiny_model()
    model.roi_heads.score_thresh = 1.0  # no softmax score exceeds it
    got = predict_tta(model, images, scales=[64, 80], flip=True)
    for det, ref, image in zip(got, plain(model, images), images):
        assert det["boxes"].shape == (0, 4) and det["scores"].shape == det["labels"].shape == (0,)
        assert det["masks"].shape == (0, 1, *image.shape[-2:])
        assert det.keys() == ref.keys()


def test_flip_changes_outputs_and_stays_valid(images):
    model = tiny_model()
    got = predict_tta(model, images, scales=[64], flip=True)
    assert_valid(got, images, model)
    expected = plain(model, images)
    assert any(not torch.equal(det["boxes"], ref["boxes"]) for det, ref in zip(got, expected))


def test_flip_union_is_mirror_symmetric(images):
    """{I, flip I} is the same set of passes as {flip I, I}: TTA on the mirrored image is
    the mirror of TTA on the image."""
    model = tiny_model()
    direct = predict_tta(model, images, scales=[64], flip=True)
    mirrored = predict_tta(model, [image.flip(-1) for image in images], scales=[64], flip=True)
    for det, mir, image in zip(direct, mirrored, images):
        width = image.shape[-1]
        x0, y0, x1, y1 = mir["boxes"].unbind(1)
        unmirrored = torch.stack((width - x1, y0, width - x0, y1), dim=1)
        order, mir_order = det["scores"].argsort(descending=True), mir["scores"].argsort(descending=True)
        torch.testing.assert_close(det["scores"][order], mir["scores"][mir_order], atol=1e-4, rtol=0)
        assert torch.equal(det["labels"][order], mir["labels"][mir_order])
        torch.testing.assert_close(det["boxes"][order], unmirrored[mir_order], atol=1e-4, rtol=0)
        # pasting rounds box edges to pixels, which is not mirror-symmetric: compare loosely
        mask_diff = (det["masks"][order] - mir["masks"][mir_order].flip(-1)).abs().mean()
        assert mask_diff < 0.02


@pytest.mark.parametrize("box_only", [False, True], ids=["mask", "box-only"])
def test_two_scales_restore_min_size(images, box_only):
    model = tiny_model(box_only)
    got = predict_tta(model, images, scales=[48, 80], flip=True)
    assert model.transform.min_size == (64,)
    assert_valid(got, images, model, masks=not box_only)


def test_min_size_restored_after_an_error(images):
    model = tiny_model()
    with pytest.raises(ValueError):  # the transform refuses a 2-D image
        predict_tta(model, [images[0], images[1][0]], scales=[48], flip=False)
    assert model.transform.min_size == (64,)


def test_keypoint_model_refused(images):
    model = tiny_model(keypoints={"num": 5, "head": {"convs": 1, "channels": 16}})
    assert model.roi_heads.keypoint_predictor is not None
    with pytest.raises(ValueError, match="not supported for keypoint models"):
        predict_tta(model, images, scales=[64], flip=False)
