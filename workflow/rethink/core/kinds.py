"""The table of variant kinds: each experiment of the study is main or an entry of one kind
(a `study.<section>` list in the config), and what a kind may set and how its variants run
is read here, by the config's validation, the rules, the results and the claims.

rethink.core.config.variants() builds and checks each entry from its row alone; a kind's
figure is its FIGURE_TABLE row (workflow/rules/common.smk) and its claims' wording the claims
table's (rethink.analysis.claims). docs/extending.md walks through adding one.
"""
from __future__ import annotations

from typing import NamedTuple


class Kind(NamedTuple):
    name: str             # Variant.kind, study.json's "kind"
    section: str          # the config's study.<section> list of its entries ("" for main)
    keys: tuple           # keys an entry may set besides name and the training keys (config.OVERRIDE_KEYS)
    own_backbone: bool    # may set model keys (config.MODEL_OVERRIDE_KEYS): a backbone of its own,
                          # pre-trained in pretrain/<norm>_<name>/
    shares_scratch: bool  # its scratch runs are main's, shared rather than trained again
    claims: tuple         # the claims repeated for each of its variants (rethink.analysis.claim_tests)
    choices: tuple = ()   # the values its one key (keys[0]) may take; () any of the key's schema type
    subset: bool = False  # trains on a fraction of the train set (its key): a less-data regime
    must_set: str = ""    # what an entry must change or it repeats main: "training" keys, "model" keys
    tta: bool = True      # may be scored with test-time augmentation


# tasks a task variant may train besides main's boxes and masks (keypoints: on COCO's
# person_keypoints files, rethink.core.names.KEYPOINT_FILE); its model adds the task's head, all else is main's
TASKS = ("keypoints",)
# datasets a dataset variant trains and is scored on instead of main's COCO-format data (voc: a
# VOCdevkit, data.voc, converted to COCO format, scored by VOC mAP too), each with the model
# keys it changes: VOC has boxes only (the paper's Faster R-CNN: no mask head); all else is
# main's model, its pretrained init main's pre-training
DATASETS = {"voc": {"masks": False}}

# kinds of pre-training (pretrain.method, rethink.engine.methods) and their names in tables:
# supervised reads the labels; the others are self-supervised, a third init (claim 9)
PRETRAIN_METHODS = {"supervised": "supervised", "mae": "MAE", "simsiam": "SimSiam"}

# In the study's display order: main, then norms, regimes, pretrainings, models, tasks,
# datasets and recipes.
KINDS = {k.name: k for k in (
    Kind("main", "", (), False, False, ()),
    Kind("norm", "norms", ("norm",), False, False, ()),
    Kind("regime", "regimes", ("fraction",), False, False, (1, 2, 3), subset=True),
    Kind("pretraining", "pretrainings", ("schedules",), False, True, (1, 2, 3, 9)),
    Kind("model", "models", (), True, False, (1, 2, 3), must_set="model"),
    Kind("task", "tasks", ("task",), True, False, (6,), choices=TASKS, tta=False),
    Kind("dataset", "datasets", ("dataset",), True, False, (7,), choices=tuple(DATASETS)),
    Kind("recipe", "recipes", (), False, False, (2, 8), must_set="training"),
)}


def on_subset(kind: str | None) -> bool:
    """Whether variants of `kind` (study.json's "kind"; None: main) train on a fraction of the
    train set: the less-data regimes that claim 4 compares with main."""
    return KINDS[kind or "main"].subset
