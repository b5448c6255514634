import pytest

from rethink.core import schedule as S


def test_paper_drop_points_for_90k_1x():
    # The paper: LR /10 when 60k and 20k iterations remain, for every schedule length.
    assert S.drop_points(180_000, 90_000) == (120_000, 160_000)  # Detectron's 2x
    assert S.drop_points(540_000, 90_000) == (480_000, 520_000)  # 6x
    assert S.drop_points(90_000, 90_000) == (30_000, 70_000)


def test_lr_warmup_and_drops():
    kw = dict(base_lr=0.02, total=180, one_x=90, warmup_iters=10, warmup_factor=0.001)
    assert S.lr_at(0, **kw) == pytest.approx(0.02 * 0.001)
    assert S.lr_at(5, **kw) == pytest.approx(0.02 * (0.001 * 0.5 + 0.5))
    assert S.lr_at(10, **kw) == pytest.approx(0.02)
    assert S.lr_at(119, **kw) == pytest.approx(0.02)
    assert S.lr_at(120, **kw) == pytest.approx(0.002)
    assert S.lr_at(160, **kw) == pytest.approx(0.0002)
    # The trunk never drops, and equals every schedule before its first drop.
    trunk = dict(kw, total=None)
    assert S.lr_at(500, **trunk) == pytest.approx(0.02)
    for it in range(120):
        assert S.lr_at(it, **trunk) == S.lr_at(it, **kw)


def test_lr_decay_factor_scales_each_drop_and_leaves_the_trunk_alone():
    """The paper's re-tuned small-data recipe divides the LR by 50 (x0.02) at each drop."""
    kw = dict(base_lr=0.04, total=180, one_x=90, warmup_iters=10, warmup_factor=0.001)
    assert S.lr_at(130, **kw, decay=0.02) == pytest.approx(0.04 * 0.02)
    assert S.lr_at(170, **kw, decay=0.02) == pytest.approx(0.04 * 0.02 ** 2)
    assert S.lr_at(170, **kw) == S.lr_at(170, **kw, decay=0.1)  # 0.1 is the default, bit for bit
    for it in range(120):  # before the first drop (the fork) nothing depends on the factor
        assert S.lr_at(it, **kw, decay=0.02) == S.lr_at(it, **kw)


def test_paper_schedule_set_forks_to_8_7x_instead_of_20x():
    plan = S.make_plan(90_000, [2, 3, 4, 5, 6], 10_000)
    assert [s.name for s in plan.schedules] == ["2x", "3x", "4x", "5x", "6x"]
    assert plan.trunk_end == 480_000
    assert plan.separate_iterations() == 20 * 90_000
    assert plan.total_iterations() == 480_000 + 5 * 60_000  # 8.67x
    assert plan.schedule("3x").fork == 210_000


def test_checkpoints_include_forks_and_ends_and_chain_back_to_zero():
    plan = S.make_plan(90, [1, 2, 2.5], 40)
    assert plan.checkpoints("trunk") == [30, 40, 80, 120, 160, 165]
    assert plan.checkpoints("1x") == [40, 80, 90]
    assert plan.checkpoints("2.5x") == [200, 225]
    # Every branch's first segment resumes from the trunk at its fork.
    assert plan.segment_start("1x", 40) == ("trunk", 30)
    assert plan.segment_start("2.5x", 200) == ("trunk", 165)
    assert plan.segment_start("trunk", 30) == ("trunk", 0)
    assert plan.segment_start("2x", 180) == ("2x", 160)
    with pytest.raises(ValueError, match="no checkpoint at iteration 50"):
        plan.segment_start("trunk", 50)


def test_schedule_shorter_than_tail_starts_from_init():
    plan = S.make_plan(90, [0.5, 1], 30)
    half = plan.schedule("0.5x")
    assert half.iters == 45 and half.fork == 0 and half.drops == (0, 25)
    assert plan.segment_start("0.5x", plan.checkpoints("0.5x")[0]) == ("trunk", 0)


def test_bad_plans_are_rejected():
    with pytest.raises(ValueError, match="one_x"):
        S.make_plan(0, [1], 10)
    with pytest.raises(ValueError, match="schedules"):
        S.make_plan(90, [], 10)


def test_jobs_pack_consecutive_checkpoints_of_a_branch():
    plan = S.make_plan(90, [1, 2, 2.5], 40)  # trunk checkpoints 30, 40, 80, 120, 160, 165
    assert plan.jobs("trunk") == [(0, [30, 40, 80, 120, 160, 165])]
    assert plan.jobs("trunk", 80) == [(0, [30, 40, 80]), (80, [120, 160]), (160, [165])]
    assert plan.jobs("trunk", 10) == [(0, [30]), (30, [40]), (40, [80]), (80, [120]),
                                      (120, [160]), (160, [165])]  # at least one checkpoint each
    assert plan.jobs("1x") == [(30, [40, 80, 90])]  # a tail starts at its fork
    assert plan.jobs("1x", 50) == [(30, [40, 80]), (80, [90])]
    assert plan.job_of("trunk", 120, 80) == (80, [120, 160])
    with pytest.raises(ValueError, match="no checkpoint at iteration 50"):
        plan.job_of("trunk", 50)
    # every checkpoint is written by exactly one job, and jobs chain back to the start
    for branch in ("trunk", "1x", "2x", "2.5x"):
        for job_iters in (None, 1, 45, 1000):
            jobs = plan.jobs(branch, job_iters)
            assert [p for _, ps in jobs for p in ps] == plan.checkpoints(branch)
            assert all(jobs[i + 1][0] == jobs[i][1][-1] for i in range(len(jobs) - 1))
