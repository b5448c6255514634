"""The table of variant kinds (rethink.core.kinds) agrees with what reads it: the config's
schema, the variants the config builds, the claims and the metrics' checks."""
import yaml

from conftest import ROOT
from rethink.analysis.claim_tests import PER_VARIANT
from rethink.analysis.claims import PER_VARIANT_HEADINGS
from rethink.core.config import variants
from rethink.core.kinds import KINDS


def test_every_kind_but_main_is_a_study_section_of_the_schema():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    sections = set(schema["properties"]["study"]["properties"]) - {"seeds"}
    assert {k.section for k in KINDS.values() if k.name != "main"} == sections


def test_each_entry_may_set_its_kinds_keys_and_no_other():
    study = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())["properties"]["study"]
    for kind in KINDS.values():
        if kind.name == "main":
            continue
        entry = study["properties"][kind.section]["items"]
        for key in kind.keys:
            assert key in entry["properties"], (kind.name, key)


def test_claims_repeat_for_the_kinds_the_table_names_and_each_has_a_heading():
    assert PER_VARIANT == {k.name: k.claims for k in KINDS.values() if k.claims}
    assert set(PER_VARIANT_HEADINGS) == set(PER_VARIANT)


def test_variants_follow_the_kinds_display_order():
    cfg = yaml.safe_load((ROOT / "workflow/presets/paper_miniature.yaml").read_text())
    base = yaml.safe_load((ROOT / "config.yaml").read_text())
    for key, value in cfg.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    order = [v.kind for v in variants(base).values()]
    rank = list(KINDS)
    assert order == sorted(order, key=rank.index) and order[0] == "main"
    assert {v.shares_scratch for v in variants(base).values() if v.kind == "pretraining"} <= {True}
