"""Training batches: epochs of seeded orders, keyed by iteration; with aspect-ratio grouping,
batches inside an epoch hold images of one padded shape, and every image is still seen once
per epoch."""
import numpy as np
import pytest
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from rethink.core.order import aspect_groups, batch_indices, epoch_order
from rethink.data.coco import IterationBatches


def sizes(n, seed=0, lo=96, hi=160):
    rng = np.random.default_rng(seed)
    return rng.integers(lo, hi + 1, n), rng.integers(lo, hi + 1, n)


def test_group_key_is_the_padded_shape_torchvision_gives():
    heights, widths = sizes(40)
    groups = aspect_groups(heights, widths, 128, 192)
    t = GeneralizedRCNNTransform(128, 192, [0] * 3, [1] * 3).eval()
    padded = [tuple(t([torch.zeros(3, int(h), int(w))])[0].tensors.shape[-2:])
              for h, w in zip(heights, widths)]
    for a in range(len(padded)):
        for b in range(len(padded)):
            assert (groups[a] == groups[b]) == (padded[a] == padded[b])


@pytest.mark.parametrize("n,bs", [(1000, 8), (997, 8), (61, 4), (50, 3)])
def test_epochs_cover_every_image_once_and_batches_stay_in_one_group(n, bs):
    heights, widths = sizes(n)
    groups = aspect_groups(heights, widths, 128, 192)
    kinds = len(set(groups.tolist()))
    epochs = 3
    iters = epochs * n // bs
    batches = [batch_indices(it, bs, n, 7, groups) for it in range(iters)]
    stream = np.concatenate(batches)
    for e in range(epochs - 1):  # each whole epoch of the stream: a permutation of the images
        assert sorted(stream[e * n:(e + 1) * n].tolist()) == list(range(n))
        assert sorted(epoch_order(7, e, n, bs, groups).tolist()) == list(range(n))
    for e in range(epochs - 1):
        inside = [b for it, b in enumerate(batches) if e * n <= it * bs and (it + 1) * bs <= (e + 1) * n]
        mixed = sum(len(set(groups[b].tolist())) > 1 for b in inside)
        assert mixed <= kinds, (e, mixed, kinds)  # at most one batch of leftovers per group
        assert mixed < len(inside) / 4


def test_grouping_cuts_padding_to_the_rounding():
    heights, widths = sizes(1000)
    groups = aspect_groups(heights, widths, 128, 192)
    f = np.minimum(128 / np.minimum(heights, widths), 192 / np.maximum(heights, widths))
    h, w = np.floor(heights * f), np.floor(widths * f)

    def waste(g):
        padded = real = 0.0
        for it in range(125):
            idx = batch_indices(it, 8, 1000, 0, g)
            padded += np.ceil(h[idx].max() / 32) * np.ceil(w[idx].max() / 32) * 1024 * 8
            real += (h[idx] * w[idx]).sum()
        return padded / real
    assert waste(groups) <= 1.15 < 1.5 < waste(None)


def test_batches_depend_on_the_iteration_only():
    heights, widths = sizes(90)
    groups = aspect_groups(heights, widths, 128, 192)
    whole = list(IterationBatches(0, 40, 4, 90, 3, groups=groups))
    pieces = list(IterationBatches(0, 17, 4, 90, 3, groups=groups)) + \
        list(IterationBatches(17, 40, 4, 90, 3, groups=groups))
    assert whole == pieces
    assert [[i for i, _ in b] for b in whole] != [[i for i, _ in b] for b in IterationBatches(0, 40, 4, 90, 3)]


def test_a_set_smaller_than_two_batches_is_not_grouped():
    groups = np.array([0, 1, 0, 1, 0])
    assert sorted(epoch_order(0, 0, 5, 4, groups).tolist()) == list(range(5))
    assert epoch_order(0, 0, 5, 4, groups).tolist() == epoch_order(0, 0, 5, 4, None).tolist()
