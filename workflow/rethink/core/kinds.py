"""The table of variant kinds: each experiment of the study is main or an entry of one kind
(a `study.<section>` list in the config), and what a kind may set and how its variants run
is read here, by the config's validation, the rules, the results and the claims.

A kind's own checks stay with its fields in rethink.core.config.variants(); its figure is its
FIGURE_TABLE row (workflow/rules/common.smk) and its claims' wording the claims table's
(rethink.analysis.claims). docs/extending.md walks through adding one.
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


# In the study's display order: main, then norms, regimes, pretrainings, models, tasks,
# datasets and recipes.
KINDS = {k.name: k for k in (
    Kind("main", "", (), False, False, ()),
    Kind("norm", "norms", ("norm",), False, False, ()),
    Kind("regime", "regimes", ("fraction",), False, False, (1, 2, 3)),
    Kind("pretraining", "pretrainings", ("schedules",), False, True, (1, 2, 3)),
    Kind("model", "models", (), True, False, (1, 2, 3)),
    Kind("task", "tasks", ("task",), True, False, (6,)),
    Kind("dataset", "datasets", ("dataset",), True, False, (7,)),
    Kind("recipe", "recipes", (), False, False, (2, 8)),
)}
