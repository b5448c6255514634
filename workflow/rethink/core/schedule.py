"""Schedule math of the paper and the forked training plan.

A schedule of length T iterations drops the LR by 10x when (60/90)x and (20/90)x
iterations remain (x = one_x, the 1x length), whatever T is. All schedules therefore
share one trajectory up to their first drop: we train one *trunk* at the base LR and
fork each schedule's *tail* (the last (60/90)x iterations) from the trunk checkpoint at
T - (60/90)x. Training is cut into *segments* that end at every checkpoint; each
checkpoint is evaluated. A training *job* (one process) trains consecutive segments of one
branch, at most `job_iters` iterations of them (None: the whole branch), and writes every
checkpoint on its way.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

FIRST_DROP_LEFT = Fraction(60, 90)   # LR /10 when this many 1x remain
SECOND_DROP_LEFT = Fraction(20, 90)  # and again /10 when this many remain
TRUNK = "trunk"


def schedule_name(multiple: float) -> str:
    """1 -> '1x', 2.0 -> '2x', 0.5 -> '0.5x'."""
    return f"{float(multiple):g}x"


def iters_for(multiple: float, one_x: int) -> int:
    return int(round(float(multiple) * one_x))


def tail_length(one_x: int) -> int:
    return int(round(FIRST_DROP_LEFT * one_x))


def drop_points(total: int, one_x: int) -> tuple[int, int]:
    """Iterations at which the LR is divided by 10 (clipped at 0 for short schedules)."""
    first = max(0, total - int(round(FIRST_DROP_LEFT * one_x)))
    second = max(0, total - int(round(SECOND_DROP_LEFT * one_x)))
    return first, second


def lr_at(iteration: int, base_lr: float, total: int | None, one_x: int,
          warmup_iters: int, warmup_factor: float, decay: float = 0.1) -> float:
    """LR used for the update at `iteration` (0-based), multiplied by `decay` at each drop
    (the paper's 0.1; its re-tuned small-data recipe: 0.02). total=None is the trunk: no
    drops, so the trunk, and the forks from it, do not depend on `decay`."""
    lr = base_lr
    if iteration < warmup_iters:
        alpha = iteration / warmup_iters
        lr *= warmup_factor * (1 - alpha) + alpha
    if total is not None:
        for drop in drop_points(total, one_x):
            if iteration >= drop:
                lr *= decay
    return lr


@dataclass(frozen=True)
class Schedule:
    name: str
    multiple: float
    iters: int
    fork: int          # trunk iteration this schedule's tail starts from
    drops: tuple[int, int]


@dataclass(frozen=True)
class Plan:
    one_x: int
    tail: int
    checkpoint_every: int
    schedules: tuple[Schedule, ...]

    @property
    def trunk_end(self) -> int:
        return max(s.fork for s in self.schedules)

    def schedule(self, name: str) -> Schedule:
        for s in self.schedules:
            if s.name == name:
                return s
        raise KeyError(f"unknown schedule {name!r}; planned: {[s.name for s in self.schedules]}")

    def checkpoints(self, branch: str) -> list[int]:
        """Iterations at which `branch` ('trunk' or a schedule name) writes a checkpoint."""
        step = self.checkpoint_every
        if branch == TRUNK:
            end = self.trunk_end
            points = set(range(step, end + 1, step)) | {s.fork for s in self.schedules}
            points.add(end)
            return sorted(p for p in points if 0 < p <= end)
        s = self.schedule(branch)
        points = {p for p in range(step, s.iters + 1, step) if p > s.fork} | {s.iters}
        return sorted(points)

    def segment_start(self, branch: str, end: int) -> tuple[str, int]:
        """(branch, iteration) of the checkpoint a segment ending at `end` resumes from.

        Iteration 0 means 'no checkpoint': start from the initialisation.
        """
        points = self.checkpoints(branch)
        if end not in points:
            raise ValueError(f"{branch} has no checkpoint at iteration {end}; it has {points}")
        i = points.index(end)
        if i > 0:
            return branch, points[i - 1]
        if branch == TRUNK:
            return TRUNK, 0
        return TRUNK, self.schedule(branch).fork

    def jobs(self, branch: str, job_iters: int | None = None) -> list[tuple[int, list[int]]]:
        """The training jobs of `branch`: (start iteration, checkpoints it writes), in order.

        Consecutive checkpoints are packed into one job while it trains at most `job_iters`
        iterations (a job always writes at least one); None packs the whole branch. A job
        starts where the previous one ended, the first at the branch's start (0, or the fork).
        """
        points = self.checkpoints(branch)
        start = 0 if branch == TRUNK else self.schedule(branch).fork
        out: list[tuple[int, list[int]]] = []
        for p in points:
            if out and (job_iters is None or p - out[-1][0] <= job_iters):
                out[-1][1].append(p)
            else:
                out.append((out[-1][1][-1] if out else start, [p]))
        return out

    def job_of(self, branch: str, iteration: int, job_iters: int | None = None) -> tuple[int, list[int]]:
        """The job of `branch` that writes the checkpoint at `iteration`."""
        for job in self.jobs(branch, job_iters):
            if iteration in job[1]:
                return job
        raise ValueError(f"{branch} has no checkpoint at iteration {iteration}; "
                         f"it has {self.checkpoints(branch)}")

    def total_iterations(self) -> int:
        """Iterations the forked plan trains for one init."""
        return self.trunk_end + sum(s.iters - s.fork for s in self.schedules)

    def separate_iterations(self) -> int:
        """Iterations separate runs of every schedule would train for one init."""
        return sum(s.iters for s in self.schedules)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["trunk_end"] = self.trunk_end
        d["forked_iterations"] = self.total_iterations()
        d["separate_iterations"] = self.separate_iterations()
        for s in d["schedules"]:
            s["drops"] = list(s["drops"])
        return d


def make_plan(one_x: int, multiples: list[float], checkpoint_every: int) -> Plan:
    if one_x <= 0:
        raise ValueError(f"detection.one_x must be positive, got {one_x}")
    if checkpoint_every <= 0:
        raise ValueError(f"detection.checkpoint_every must be positive, got {checkpoint_every}")
    tail = tail_length(one_x)
    schedules = []
    for m in sorted(set(float(m) for m in multiples)):
        total = iters_for(m, one_x)
        if total <= 0:
            raise ValueError(f"detection.schedules: {m} x {one_x} iterations is not positive")
        fork = max(0, total - tail)
        schedules.append(Schedule(schedule_name(m), m, total, fork, drop_points(total, one_x)))
    if not schedules:
        raise ValueError("detection.schedules is empty")
    return Plan(one_x, tail, checkpoint_every, tuple(schedules))


def main(argv=None):
    """Write the plan of a schedule set as JSON: `python -m rethink.core.schedule --out plan.json ...`"""
    import argparse
    import json

    from rethink.core.atomic import write_json

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--one-x", type=int, required=True, help="iterations of a 1x schedule")
    p.add_argument("--schedules", type=float, nargs="+", required=True, help="multiples of 1x")
    p.add_argument("--checkpoint-every", type=int, required=True)
    p.add_argument("--extra", default="{}", help="JSON object merged into the plan (inits, batch size)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    try:
        plan = make_plan(args.one_x, args.schedules, args.checkpoint_every)
    except ValueError as e:
        p.error(str(e))
    write_json(args.out, {**plan.to_dict(), **json.loads(args.extra)})
    print(f"{plan.total_iterations()} iterations forked vs {plan.separate_iterations()} separate")


if __name__ == "__main__":
    main()
