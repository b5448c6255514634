"""Figure: pre-training's lead, the pretrained minus the scratch run of the same seed, in
final box and mask AP per schedule, against the claims' margin.

The question users bring ("how long must I train from scratch?") read off one axis: the
mean over seeds of the paired difference at each schedule's last iteration, with its 95%
t-interval (none with one seed), and the band of ±margin (claims.margin) in which scratch
counts as having caught up. An interval wholly inside the band: caught up at that schedule;
wholly above it: pre-training still leads by more than the margin; across an edge: the seeds
cannot tell (the claims table decides, with Holm's correction, rethink.analysis.claims).

    python -m rethink.figures.lead --study study.json --metrics all_metrics.csv \
        [--margin 3.0] --out-png lead.png --out-pdf lead.pdf
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from rethink.analysis.inputs import TASKS, MetricsError, ordered_schedules
from rethink.analysis.results import variant_finals
from rethink.figures.common import (
    TASK_LABELS,
    add_figure_args,
    base_parser,
    final_series,
    legend_and_note,
    load_inputs,
    run_cli,
    save_figure,
    seeds_note,
    setup_theme,
    variant_title,
)


def draw(finals, plan, margin, title=""):
    scheds = ordered_schedules(plan)
    fig, axes = plt.subplots(1, len(TASKS), figsize=(4.2 * len(TASKS), 4.4), sharey=True)
    ns = []
    for ax, task in zip(axes, TASKS):
        points = final_series(finals, "pretrained", scheds, minus=finals, column=f"{task}_AP")
        ns += [n for *_, n in points]
        xs = [x for x, *_ in points]
        if margin:
            ax.axhspan(-margin, margin, color="0.85", lw=0, zorder=1)
        ax.axhline(0, color="0.3", lw=0.8, zorder=2)
        for x, mean, lo, hi, n in points:
            ax.errorbar(x, mean, yerr=[[mean - lo], [hi - mean]] if n > 1 else None, fmt="o",
                        color="C0", ecolor="0.15", capsize=4, zorder=4)
            ax.annotate(f"{mean:+.1f}", (x, hi if n > 1 else mean), xytext=(0, 4),
                        textcoords="offset points", ha="center", fontsize="small")
        ax.plot(xs, [m for _, m, *_ in points], color="C0", lw=1, zorder=3)
        ax.set_xticks(xs)
        ax.set_xticklabels([s["name"] for s in scheds])
        ax.set_xlabel("schedule")
        ax.set_title(f"lead in final {TASK_LABELS[task]}")
    axes[0].set_ylabel("pretrained - scratch (AP points)")
    handles = [Line2D([], [], color="C0", marker="o", label="mean lead over seeds (paired)")]
    if max(ns, default=0) >= 2:
        handles.append(Line2D([], [], color="0.15", marker="|", ms=10, lw=0, label="95% interval"))
    if margin:
        handles.append(Patch(color="0.85", label=f"±{margin:g} AP: scratch has caught up"))
    fig.suptitle("How long must scratch train? Pre-training's lead by schedule"
                 + (f" ({title})" if title else ""))
    fig.tight_layout()
    legend_and_note(fig, handles, seeds_note(ns, what="Points", band="error bars"), ncol=3)
    return fig


def main(argv=None) -> int:
    p = base_parser("python -m rethink.figures.lead",
                    "Pre-training's lead (pretrained - scratch, paired by seed) in final AP per "
                    "schedule, against the claims' margin.")
    p.add_argument("--margin", type=float, default=None,
                   help="the claims' margin in AP points (claims.margin), drawn as a band")
    add_figure_args(p)
    args = p.parse_args(argv)
    study, df = load_inputs(args)
    main_v = study["main"]
    plan = study["variants"][main_v]
    if set(plan["inits"]) != {"scratch", "pretrained"}:
        raise MetricsError(f"{args.study}: the lead needs both inits, the study has {plan['inits']}")
    finals = variant_finals(df, study, main_v, str(args.metrics))
    setup_theme(args)
    fig = draw(finals, plan, args.margin, variant_title(main_v, plan))
    save_figure(fig, args.out_png, args.out_pdf, args.dpi)
    print(f"wrote {args.out_png} and {args.out_pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
