"""The fast-backward RoIAlign equals torchvision's: forward bit for bit, gradient to rounding."""
import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as tv_roi_align

from rethink.models.detector import build_mask_rcnn
from rethink.models.roi_align import FastMultiScaleRoIAlign, roi_align
from tiny import tiny


def random_rois(gen, n, batch, height, width, scale):
    """Boxes in image coordinates: inside, straddling the border, far outside, degenerate."""
    xy = torch.rand(n, 2, generator=gen) * torch.tensor([width, height]) / scale * 1.2 - 4
    wh = torch.rand(n, 2, generator=gen) * torch.tensor([width, height]) / scale * 0.6
    wh[: n // 8] = 0  # zero-size boxes: forced to 1x1 when not aligned
    b = torch.randint(0, batch, (n, 1), generator=gen).float()
    return torch.cat([b, xy, xy + wh], 1)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio,output_size", [(2, (7, 7)), (2, (14, 14)), (1, (5, 3)),
                                                         (3, (4, 6))])
def test_matches_torchvision(aligned, sampling_ratio, output_size):
    gen = torch.Generator().manual_seed(sampling_ratio)
    x = torch.randn(3, 8, 20, 26, generator=gen)
    rois = random_rois(gen, 64, 3, 20, 26, scale=0.25)
    ref_in, fast_in = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = tv_roi_align(ref_in, rois, output_size, 0.25, sampling_ratio, aligned)
    out = roi_align(fast_in, rois, output_size, 0.25, sampling_ratio, aligned)
    assert torch.equal(out, ref)
    grad = torch.randn(ref.shape, generator=gen)
    ref.backward(grad)
    out.backward(grad)
    torch.testing.assert_close(fast_in.grad, ref_in.grad, rtol=1e-5, atol=1e-5)
    again = x.clone().requires_grad_()
    roi_align(again, rois, output_size, 0.25, sampling_ratio, aligned).backward(grad)
    assert torch.equal(again.grad, fast_in.grad)  # deterministic: resumed runs stay bitwise


def test_no_rois_and_adaptive_sampling():
    x = torch.randn(2, 4, 10, 10, requires_grad=True)
    out = roi_align(x, torch.zeros(0, 5), (7, 7), 0.5, 2)
    assert out.shape == (0, 4, 7, 7)
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    rois = torch.tensor([[0, 1.0, 2.0, 15.0, 12.0]])  # sampling_ratio <= 0: torchvision's op
    assert torch.equal(roi_align(x, rois, 3, 0.5, -1), tv_roi_align(x, rois, 3, 0.5, -1))


def test_multiscale_pooler_matches_torchvision():
    gen = torch.Generator().manual_seed(0)
    feats = {str(i): torch.randn(2, 4, 64 >> i, 48 >> i, generator=gen) for i in range(4)}
    boxes = [torch.tensor([[0, 0, 250, 190], [10, 20, 40, 60], [100, 5, 130, 9.0]]),
             torch.tensor([[3, 4, 120, 100.0]])]
    shapes = [(256, 192), (256, 192)]
    ref = MultiScaleRoIAlign(list(feats), 7, 2)(feats, boxes, shapes)
    fast = FastMultiScaleRoIAlign(list(feats), 7, 2)(feats, boxes, shapes)
    assert torch.equal(fast, ref)


@pytest.mark.parametrize("bf16", [False, True])
def test_detector_training_step_matches_torchvision_pooling(bf16):
    """One Mask R-CNN step: the same losses, gradients equal to rounding, same weights keys.
    Under bf16 autocast the pooled features are bf16 too (the same numbers, by the fast
    path's fp32 inside), and an RoIAlign input gradient may round the other way in bf16."""
    _, model_cfg, _ = tiny()
    gen = torch.Generator().manual_seed(1)
    images = [torch.rand(3, 80, 96, generator=gen) for _ in range(2)]
    masks = torch.zeros(2, 80, 96, dtype=torch.uint8)
    masks[0, 10:50, 8:40] = 1
    masks[1, 30:70, 50:90] = 1
    targets = [{"boxes": torch.tensor([[8.0, 10, 40, 50], [50, 30, 90, 70]]),
                "labels": torch.tensor([1, 2]), "masks": masks} for _ in images]
    grads, losses = [], []
    for fast in (False, True):
        torch.manual_seed(0)
        model = build_mask_rcnn(model_cfg, 2, fast_roi_align=fast)
        model.train()
        torch.manual_seed(1)  # the same RPN and RoI sampling draws
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(images, targets)
        total = sum(loss.values())
        if fast:  # every RoIAlign of the box and mask heads takes the fast backward
            assert not any("torchvision_roi_align" in n for n in graph_names(total))
        total.backward()
        losses.append({k: v.item() for k, v in loss.items()})
        grads.append({k: p.grad for k, p in model.named_parameters() if p.grad is not None})
    assert losses[0] == losses[1]
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        tol = dict(rtol=1e-2, atol=1e-4) if bf16 else dict(rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(grads[1][k], grads[0][k], **tol, msg=k)


def graph_names(tensor):
    """The names of the autograd nodes that back-propagating `tensor` would run."""
    seen, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and node not in seen:
            seen.add(node)
            stack += [n for n, _ in node.next_functions]
    return {node.name() for node in seen}


@pytest.mark.parametrize("autocast", [True, False])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_pools_in_fp32_as_torchvision_autocast(dtype, autocast):
    """bf16/fp16 features (as under CPU autocast) take the fast path, pooled in fp32: the
    output is torchvision's on the input cast to fp32, cast back (so equal to torchvision's
    autocast output); the gradient is the fp32 gradient of that input, cast to its dtype."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 8, 20, 26, generator=gen).to(dtype)
    rois = random_rois(gen, 64, 3, 20, 26, scale=0.25)
    grad = torch.randn(64, 8, 7, 7, generator=gen).to(dtype)
    fast_in = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=dtype, enabled=autocast):
        out = roi_align(fast_in, rois, (7, 7), 0.25, 2)
        tv_out = tv_roi_align(x, rois, (7, 7), 0.25, 2) if autocast else None
        out.backward(grad)  # inside the region: the sparse product must still be fp32
    names = graph_names(out)
    assert "_RoIAlignCPUBackward" in names
    assert not any("torchvision_roi_align" in n for n in names)  # torchvision's slow backward
    ref_in = x.float().requires_grad_()
    ref = tv_roi_align(ref_in, rois, (7, 7), 0.25, 2)
    assert out.dtype == dtype and torch.equal(out, ref.to(dtype))
    if autocast:
        assert torch.equal(out, tv_out)
    ref.backward(grad.float())
    assert fast_in.grad.dtype == dtype
    # Rounding the fp32 gradient to `dtype` errs by at most half a unit in the last place;
    # summing in another order (fp32, ~1e-6) may move a value across a rounding boundary,
    # so allow one unit: relative eps (bf16 2^-7 = 7.8e-3, fp16 2^-10 = 9.8e-4).
    torch.testing.assert_close(fast_in.grad.float(), ref_in.grad,
                               rtol=torch.finfo(dtype).eps, atol=1e-5)


def test_multiscale_pooler_under_autocast_matches_torchvision():
    """Under bf16 autocast, levels of mixed dtypes: the same result, in the first level's dtype."""
    gen = torch.Generator().manual_seed(0)
    feats = {str(i): torch.randn(2, 4, 64 >> i, 48 >> i, generator=gen) for i in range(4)}
    feats["0"], feats["2"] = feats["0"].bfloat16(), feats["2"].bfloat16()
    boxes = [torch.tensor([[0, 0, 250, 190], [10, 20, 40, 60], [100, 5, 130, 9.0]]),
             torch.tensor([[3, 4, 120, 100.0]])]
    shapes = [(256, 192), (256, 192)]
    for names in (list(feats), ["2"]):  # several levels; a single level
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ref = MultiScaleRoIAlign(names, 7, 2)(feats, boxes, shapes)
            fast = FastMultiScaleRoIAlign(names, 7, 2)(feats, boxes, shapes)
        assert fast.dtype == ref.dtype == torch.bfloat16
        assert torch.equal(fast, ref)
