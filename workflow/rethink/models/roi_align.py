"""RoIAlign with a faster backward pass on CPU, for Mask R-CNN's box and mask heads.

Profiling the default study's training step on CPU (``python -m rethink.bench.suite``) puts
torchvision's RoIAlign backward at about a quarter of the step: its CPU kernel is a scalar
loop that recomputes the bilinear weights of every sample for every channel. Here the
forward pass is torchvision's own kernel (same numbers, bit for bit), and the backward pass
is the transpose of that bilinear sampling written as one sparse matrix product:

    grad_input[b, y, x, :] = sum over (RoI bin, sample, corner) hitting (b, y, x) of
                             weight / samples_per_bin * grad_output[RoI, :, bin]

The sparse matrix (pixels x RoI bins) holds 4 x sampling_ratio^2 entries per bin, built from
separable per-axis coordinates with torchvision's rules (clamping at the border, samples
beyond one pixel outside the map ignored, RoIs at least 1x1 when not ``aligned``), and
``torch.sparse.mm`` multiplies it with the output gradient in channels-last layout, every
channel at once. The gradient equals torchvision's up to float rounding (the same terms,
summed in another order: ~1e-6 relative), and is deterministic (serial sums on CPU), so
resumed and forked training stay bitwise reproducible.

Half-precision inputs (bf16 or fp16, as the FPN features are under CPU autocast) are pooled
as torchvision's autocast wrapper for roi_align does, autocast on or off: cast to fp32, pooled
and back-propagated in fp32, the output and the input's gradient cast back to the input's
dtype. The output then equals torchvision's under autocast bit for bit.

Used on CPU with a fixed ``sampling_ratio`` > 0 (torchvision's detection heads use 2); on
other devices, or with an adaptive sampling ratio, torchvision's op runs unchanged.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as tv_roi_align
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales


def _axis(start: Tensor, bin_size: Tensor, pooled: int, grid: int, size: int):
    """Bilinear taps along one axis: per (RoI, bin), 2 x grid (index, weight) pairs.

    Follows torchvision's ``bilinear_interpolate_gradient``: a sample beyond [-1, size] adds
    nothing; one in [-1, 0] is clamped to 0; at or past size - 1 both taps are the last
    pixel. The sample position is computed in the kernel's order of float operations.
    """
    p = torch.arange(pooled, dtype=start.dtype)
    i = torch.arange(grid, dtype=start.dtype) + 0.5
    pos = (start[:, None, None] + p[None, :, None] * bin_size[:, None, None]) \
        + (i * bin_size[:, None, None]) / grid                       # (R, pooled, grid)
    valid = (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.floor()
    top = low >= size - 1
    low = torch.where(top, torch.full_like(low, size - 1), low)
    pos = torch.where(top, low, pos)
    frac = pos - low
    high = torch.where(top, low, low + 1)
    index = torch.stack([low, high], -1).to(torch.int64).flatten(2)             # (R, pooled, 2 grid)
    weight = (torch.stack([1.0 - frac, frac], -1) * valid[..., None]).flatten(2)
    return index, weight


def _sampling_matrix_t(rois: Tensor, input_shape, output_size, spatial_scale: float,
                       sampling_ratio: int, aligned: bool, dtype) -> Tensor:
    """The transpose of RoIAlign as a sparse (B*H*W) x (R*PH*PW) matrix (uncoalesced COO)."""
    batch, _, height, width = input_shape
    ph, pw = output_size
    n = rois.shape[0]
    rois = rois.to(dtype)
    offset = 0.5 if aligned else 0.0
    box = rois[:, 1:] * spatial_scale - offset                       # x0, y0, x1, y1
    roi_w, roi_h = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    if not aligned:  # malformed RoIs are forced to 1x1
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    y_idx, y_w = _axis(box[:, 1], roi_h / ph, ph, sampling_ratio, height)
    x_idx, x_w = _axis(box[:, 0], roi_w / pw, pw, sampling_ratio, width)
    y_idx = y_idx * width + (rois[:, 0].to(torch.int64) * (height * width))[:, None, None]
    # (R, PH, PW, taps_y, taps_x): every (y tap, x tap) pair of every bin
    pixel = (y_idx[:, :, None, :, None] + x_idx[:, None, :, None, :]).reshape(-1)
    weight = ((y_w[:, :, None, :, None] * x_w[:, None, :, None, :])
              / (sampling_ratio * sampling_ratio)).reshape(-1)
    taps = (2 * sampling_ratio) ** 2
    bin_index = torch.arange(n * ph * pw).repeat_interleave(taps)
    return torch.sparse_coo_tensor(torch.stack([pixel, bin_index]), weight,
                                   (batch * height * width, n * ph * pw), check_invariants=True)


class _RoIAlignCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, rois, output_size, spatial_scale, sampling_ratio, aligned):
        ctx.save_for_backward(rois)
        ctx.args = (tuple(input.shape), output_size, spatial_scale, sampling_ratio, aligned)
        return torch.ops.torchvision.roi_align(input, rois, spatial_scale, output_size[0],
                                               output_size[1], sampling_ratio, aligned)

    @staticmethod
    def backward(ctx, grad_output):
        (rois,) = ctx.saved_tensors
        shape, output_size, spatial_scale, sampling_ratio, aligned = ctx.args
        # A backward run inside an autocast region would otherwise do the sparse product in
        # the low precision; the gradient is fp32 (or fp64) here, as torchvision's.
        with torch.autocast("cpu", enabled=False):
            grad = roi_align_backward(grad_output, rois, shape, output_size, spatial_scale,
                                      sampling_ratio, aligned)
        return grad, None, None, None, None, None


def roi_align_backward(grad_output: Tensor, rois: Tensor, input_shape, output_size,
                       spatial_scale: float, sampling_ratio: int, aligned: bool) -> Tensor:
    """Gradient of RoIAlign with respect to its input (CPU, sampling_ratio > 0)."""
    batch, channels, height, width = input_shape
    n = rois.shape[0]
    if n == 0:
        return grad_output.new_zeros(input_shape)
    mt = _sampling_matrix_t(rois, input_shape, output_size, spatial_scale, sampling_ratio,
                            aligned, grad_output.dtype)
    g = grad_output.permute(0, 2, 3, 1).reshape(n * output_size[0] * output_size[1], channels)
    grad = torch.sparse.mm(mt, g)                                   # (B*H*W, C)
    return grad.view(batch, height, width, channels).permute(0, 3, 1, 2).contiguous()


_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def roi_align(input: Tensor, rois: Tensor, output_size, spatial_scale: float = 1.0,
              sampling_ratio: int = -1, aligned: bool = False) -> Tensor:
    """torchvision.ops.roi_align (rois as a K x 5 tensor), with the fast CPU backward."""
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    output_size = tuple(int(s) for s in output_size)
    if (input.device.type != "cpu" or sampling_ratio <= 0 or not torch.is_tensor(rois)
            or input.dtype not in _DTYPES or torch.jit.is_scripting()):
        return tv_roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned)
    if input.dtype in (torch.float16, torch.bfloat16):
        # As torchvision's autocast wrapper for roi_align: pool in fp32, cast the result back.
        # Both casts are autograd ops, so the backward gets an fp32 output gradient, runs the
        # sparse product in fp32, and hands the input an input-dtype gradient.
        return roi_align(input.float(), rois, output_size, spatial_scale, sampling_ratio,
                         aligned).to(input.dtype)
    rois = rois.to(input.dtype)
    return _RoIAlignCPU.apply(input, rois, output_size, float(spatial_scale),
                              int(sampling_ratio), bool(aligned))


class FastMultiScaleRoIAlign(MultiScaleRoIAlign):
    """torchvision's MultiScaleRoIAlign (same level mapping, scales and output), pooling
    each level with `roi_align` above. No parameters: checkpoints are unchanged."""

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor],
                image_shapes: list[tuple[int, int]]) -> Tensor:
        x_filtered = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(
                x_filtered, image_shapes, self.canonical_scale, self.canonical_level)
        rois = _convert_to_roi_format(boxes)
        if len(x_filtered) == 1:
            return roi_align(x_filtered[0], rois, self.output_size, self.scales[0],
                             self.sampling_ratio)
        levels = self.map_levels(boxes)
        first = x_filtered[0]
        result = torch.zeros((len(rois), first.shape[1]) + self.output_size, dtype=first.dtype,
                             device=first.device)
        for level, (feature, scale) in enumerate(zip(x_filtered, self.scales)):
            idx = torch.where(levels == level)[0]
            pooled = roi_align(feature, rois[idx], self.output_size, scale, self.sampling_ratio)
            result[idx] = pooled.to(result.dtype)  # autocast may give levels other dtypes
        return result
