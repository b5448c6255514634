"""The seeded order in which training visits its images: which image each batch of each
iteration holds, the same in every process, on resume and in the cost tables. Torch-free,
so the jobs that count what training saw (rethink.analysis.compute, rethink.data.subsets) need no torch."""
from __future__ import annotations

import numpy as np


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across processes and Python versions."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def batch_indices(iteration: int, batch_size: int, n: int, seed: int, groups=None) -> list[int]:
    """Dataset indices of the batch at `iteration`: the concatenated epoch orders
    (`epoch_order`) cut into batches."""
    out = []
    for pos in range(iteration * batch_size, (iteration + 1) * batch_size):
        epoch, offset = divmod(pos, n)
        out.append(int(epoch_order(seed, epoch, n, batch_size, groups)[offset]))
    return out


_ORDERS: dict[tuple, tuple] = {}  # the last epoch's order, with the groups it was made for


def epoch_order(seed: int, epoch: int, n: int, batch_size: int, groups=None) -> np.ndarray:
    """The order in which epoch `epoch` visits the n images: every image once.

    Without `groups`, a seeded permutation. With `groups` (a key per image, see
    `aspect_groups`), the batches that lie inside the epoch each hold images of one group
    (as Detectron's and torchvision's aspect-ratio grouping), so that a batch is padded
    little: each group's images in permuted order are cut into whole batches, and those
    batches are shuffled. The few images left over (fewer than a batch per group) fill
    the epoch's first and last positions, which share batches with the neighbouring
    epochs, and any batch between: at most one mixed batch per group, plus those at the
    epoch boundaries."""
    key = (seed, epoch, n, batch_size)
    cached = _ORDERS.get(key)
    if cached is None or cached[0] is not groups:  # the groups object itself: no id reuse
        _ORDERS.clear()
        perm = np.random.default_rng(mix_seed(seed, epoch, 1)).permutation(n)
        if groups is not None and n >= 2 * batch_size:
            perm = _grouped(perm, np.asarray(groups), epoch, n, batch_size, seed)
        _ORDERS[key] = cached = (groups, perm)
    return cached[1]


def _grouped(perm, groups, epoch, n, bs, seed) -> np.ndarray:
    head = (-epoch * n) % bs           # positions that complete the batch the last epoch began
    tail = (n - head) % bs             # positions that begin the batch the next epoch completes
    whole, left = [], []
    for g in np.unique(groups):
        members = perm[groups[perm] == g]            # this group, in the permutation's order
        k = len(members) // bs
        whole += list(members[:k * bs].reshape(k, bs))
        left.append(members[k * bs:])
    left = np.concatenate(left)
    if len(left) < head + tail:                      # (len(left) = head + tail mod bs)
        left = np.concatenate([whole.pop(), left])
    rank = np.empty(n, dtype=np.int64)
    rank[perm] = np.arange(n)
    left = left[np.argsort(rank[left], kind="stable")]  # leftovers in the permutation's order
    middle = len(left) - tail
    whole += list(left[head:middle].reshape(-1, bs))
    order = np.random.default_rng(mix_seed(seed, epoch, 5)).permutation(len(whole))
    return np.concatenate([left[:head]] + [whole[i] for i in order] + [left[middle:]])


def aspect_groups(heights, widths, min_size: int, max_size: int, divisible: int = 32) -> np.ndarray:
    """A group key per image: the shape it is padded to alone, after the detector's resize
    (GeneralizedRCNNTransform: short side to min_size, long side at most max_size, each side
    floored, then padded up to a multiple of `divisible`). Images of one key share a padded
    shape, so a batch of them wastes only the rounding up to `divisible`."""
    h = np.asarray(heights, dtype=np.float64)
    w = np.asarray(widths, dtype=np.float64)
    f = np.minimum(float(min_size) / np.minimum(h, w), float(max_size) / np.maximum(h, w))
    ph = np.ceil(np.floor(h * f) / divisible).astype(np.int64)
    pw = np.ceil(np.floor(w * f) / divisible).astype(np.int64)
    return ph * (1 << 20) + pw
