"""Forking savings: iterations trained with the forked plan (one trunk per init, a tail per
schedule) against separate runs of every schedule, exactly, from rethink.core.schedule.make_plan;
and the training wall time that saves on the configured study, estimated from a measured
s/iteration."""
from __future__ import annotations

from fractions import Fraction

from rethink.bench.common import rnd
from rethink.core.schedule import make_plan

PAPER_ONE_X = 90_000
PAPER_SCHEDULES = (2, 3, 4, 5, 6)  # the paper's Figure 5


def plan_counts(one_x: int, schedules, checkpoint_every: int) -> dict:
    plan = make_plan(one_x, list(schedules), checkpoint_every)
    forked, separate = plan.total_iterations(), plan.separate_iterations()
    return {"one_x": one_x, "schedules": list(schedules), "forked_iterations": forked,
            "separate_iterations": separate, "saved_iterations": separate - forked,
            "forked_in_1x": str(Fraction(forked, one_x)), "separate_in_1x": str(Fraction(separate, one_x)),
            "ratio_separate_vs_forked": rnd(separate / forked, 4)}


def _study_cells(config: dict):
    """(variant name, detection settings) of each trained cell of the configured study, with
    the number of seeds; the main variant only where the config has no study section."""
    try:
        from rethink.core.config import seeds, variants
        cells = [(name, v.detection) for name, v in variants(config).items()]
        return cells, len(seeds(config))
    except (ImportError, KeyError, TypeError):
        return [("main", config["detection"])], 1


def savings(config: dict, s_per_iter: float | None) -> dict:
    det = config["detection"]
    paper = plan_counts(PAPER_ONE_X, PAPER_SCHEDULES, 10_000)
    paper_at_default = plan_counts(det["one_x"], PAPER_SCHEDULES, det["checkpoint_every"])
    cells, n_seeds = _study_cells(config)
    inits = len(det["inits"])
    per_variant, forked, separate = {}, 0, 0
    for name, d in cells:
        c = plan_counts(d["one_x"], d["schedules"], d["checkpoint_every"])
        per_variant[name] = c
        forked += c["forked_iterations"] * inits * n_seeds
        separate += c["separate_iterations"] * inits * n_seeds
    study = {"inits": inits, "seeds": n_seeds, "variants": per_variant,
             "forked_iterations": forked, "separate_iterations": separate,
             "saved_iterations": separate - forked,
             "ratio_separate_vs_forked": rnd(separate / forked, 4)}
    if s_per_iter:
        study["s_per_iter_measured"] = rnd(s_per_iter, 4)
        study["saved_train_seconds_estimate"] = rnd((separate - forked) * s_per_iter, 1)
        study["forked_train_seconds_estimate"] = rnd(forked * s_per_iter, 1)
        study["separate_train_seconds_estimate"] = rnd(separate * s_per_iter, 1)
    return {"paper_2x_6x": paper, "paper_2x_6x_at_default_one_x": paper_at_default,
            "configured_study": study,
            "math_command": "python -c 'from rethink.core.schedule import make_plan; "
                       "p = make_plan(90000, [2, 3, 4, 5, 6], 10000); "
                       "print(p.total_iterations(), p.separate_iterations())'"}
