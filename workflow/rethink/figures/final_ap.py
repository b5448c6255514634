"""Figure: final bbox AP and mask AP per schedule, scratch vs pretrained.

Grouped bars (one group per schedule, one bar per init) with value labels;
the value is the metric at the schedule's last iteration (``S.iters``).

    python -m rethink.figures.final_ap --plan plan.json --metrics all_metrics.csv \
        --out-png final_ap.png --out-pdf final_ap.pdf
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np

from rethink.figures.common import (
    TASK_LABELS, add_figure_args, base_parser, init_colors, init_label, run_cli,
    save_figure, setup_theme,
)
from rethink.results import (
    TASKS, check_against_plan, final_metrics, load_plan, ordered_schedules,
    read_metrics_csv,
)


def draw(final, plan, args):
    scheds = ordered_schedules(plan)
    inits = list(plan["inits"])
    colors = init_colors(inits, args.palette)
    n = len(inits)
    width = 0.8 / n
    xs = np.arange(len(scheds))

    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 2.2 + 1.6 * len(scheds) * 2), 4.6),
                             sharey=True)
    ymax = 0.0
    for ax, task in zip(axes, TASKS):
        for k, init in enumerate(inits):
            vals = []
            for s in scheds:
                row = final[(final["init"] == init) & (final["schedule"] == s["name"])]
                vals.append(100.0 * float(row[f"{task}_AP"].iloc[0]))
            vals = np.array(vals)
            pos = xs - 0.4 + width * (k + 0.5)
            bars = ax.bar(pos, np.nan_to_num(vals, nan=0.0), width=width * 0.95,
                          color=colors[init], label=init_label(init), zorder=3)
            ax.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{v:.1f}" for v in vals],
                         padding=2, fontsize="small")
            if np.isfinite(vals).any():
                ymax = max(ymax, float(np.nanmax(vals)))
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{s['name']}\n({s['iters']} it)" for s in scheds])
        ax.set_title(f"final {TASK_LABELS[task]}")
        ax.set_xlabel("schedule")
        ax.set_ylabel("AP (%)")
        ax.grid(axis="x", visible=False)
    axes[0].set_ylim(0, max(ymax * 1.15, 1.0))
    axes[0].legend(loc="upper left", fontsize="small", frameon=True)
    fig.suptitle("Final AP by schedule: random init vs ImageNet pre-training")
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    p = base_parser("python -m rethink.figures.final_ap",
                    "Bar chart of final bbox/mask AP per schedule for each init.")
    add_figure_args(p)
    args = p.parse_args(argv)
    plan = load_plan(args.plan)
    df = read_metrics_csv(args.metrics)
    check_against_plan(df, plan)
    final = final_metrics(df, plan)
    setup_theme(args)
    fig = draw(final, plan, args)
    save_figure(fig, args.out_png, args.out_pdf, args.dpi)
    print(f"wrote {args.out_png} and {args.out_pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
