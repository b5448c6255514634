"""Figure: final bbox AP and mask AP per schedule, scratch vs pretrained.

The study's main variant. Grouped bars (one group per schedule, one bar per
init): the bar is the mean over seeds of the metric at the schedule's last
iteration (``S.iters``), the error bar its 95% t-interval (none with one seed),
and the dots the single seeds, so two seeds are never mistaken for a tight
interval. With ``--reference`` the paper's numbers are hollow "paper" markers
on the panel of the reference metric (bbox AP for COCO).

    python -m rethink.figures.final_ap --study study.json --metrics all_metrics.csv \
        [--reference reference.json] --out-png final_ap.png --out-pdf final_ap.pdf
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from rethink.analysis.inputs import TASKS, load_reference, ordered_schedules
from rethink.analysis.results import variant_finals
from rethink.analysis.stats import aggregate_seeds
from rethink.figures.common import (
    TASK_LABELS,
    add_figure_args,
    add_reference_arg,
    base_parser,
    init_colors,
    init_label,
    legend_and_note,
    load_inputs,
    paper_marker,
    run_cli,
    save_figure,
    seeds_note,
    setup_theme,
    variant_title,
)


def summarise(finals, task: str):
    """Mean/CI over seeds of ``<task>_AP`` per (init, schedule), in percent."""
    col = f"{task}_AP"
    sub = finals[["init", "schedule", col]].rename(columns={col: "value"})
    agg = aggregate_seeds(sub, ["init", "schedule"])
    for c in ("mean", "std", "lo", "hi"):
        agg[c] = 100.0 * agg[c]
    return agg


def draw(finals, plan, args, reference=None, title=""):
    scheds = ordered_schedules(plan)
    inits = list(plan["inits"])
    colors = init_colors(inits, args.palette)
    n = len(inits)
    width = 0.8 / n
    xs = np.arange(len(scheds))
    rng = np.random.default_rng(0)  # fixed jitter: identical reruns give identical files

    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 2.2 + 1.6 * len(scheds) * 2), 4.9),
                             sharey=True)
    ymax, ns, drew_ref = 0.0, [], False
    for ax, task in zip(axes, TASKS):
        agg = summarise(finals, task)
        ref = (reference or {}).get("schedules", {}) if (
            reference and reference["task"] == task) else {}
        for k, init in enumerate(inits):
            pos = xs - 0.4 + width * (k + 0.5)
            for j, s in enumerate(scheds):
                row = agg[(agg["init"] == init) & (agg["schedule"] == s["name"])].iloc[0]
                m, lo, hi = float(row["mean"]), float(row["lo"]), float(row["hi"])
                ns.append(int(row["n"]))
                ax.bar(pos[j], 0.0 if np.isnan(m) else m, width=width * 0.95,
                       color=colors[init], label=init_label(init) if j == 0 else None,
                       zorder=3)
                top = 0.0 if np.isnan(m) else m
                if np.isfinite(lo) and np.isfinite(hi):
                    ax.errorbar(pos[j], m, yerr=[[m - lo], [hi - m]], fmt="none",
                                ecolor="0.15", elinewidth=1.2, capsize=4, zorder=5)
                    top = max(top, hi)
                seeds = 100.0 * finals[(finals["init"] == init)
                                       & (finals["schedule"] == s["name"])][f"{task}_AP"]
                seeds = seeds.to_numpy(dtype=float)
                seeds = seeds[np.isfinite(seeds)]
                if len(seeds) > 1:
                    jit = rng.uniform(-0.18, 0.18, len(seeds)) * width
                    ax.plot(pos[j] + jit, seeds, "o", ms=3.2, color="0.1", alpha=0.7,
                            zorder=6)
                    top = max(top, float(seeds.max()))
                ax.annotate("n/a" if np.isnan(m) else f"{m:.1f}", (pos[j], top),
                            xytext=(0, 3), textcoords="offset points", ha="center",
                            va="bottom", fontsize="small", zorder=7)
                ymax = max(ymax, top)
                r = ref.get(init, {}).get(s["name"])
                if r is not None:
                    paper_marker(ax, pos[j], r, "0.1")
                    ymax = max(ymax, r)
                    drew_ref = True
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{s['name']}\n({s['iters']} it)" for s in scheds])
        ax.set_title(f"final {TASK_LABELS[task]}")
        ax.set_xlabel("schedule")
        ax.set_ylabel("AP (%)")
        ax.grid(axis="x", visible=False)
    axes[0].set_ylim(0, max(ymax * 1.1, 1.0))
    handles, _ = axes[0].get_legend_handles_labels()
    if max(ns, default=0) >= 2:
        handles.append(Line2D([], [], color="0.15", marker="|", ms=10, lw=0,
                              label="95% interval over seeds"))
        handles.append(Line2D([], [], color="0.1", marker="o", ms=3.2, lw=0, alpha=0.7,
                              label="single seeds"))
    if drew_ref:
        handles.append(Line2D([], [], marker="D", ms=8, mfc="none", mec="0.1", mew=1.6,
                              lw=0, label="paper"))
    fig.suptitle("Final AP by schedule: random init vs ImageNet pre-training"
                 + (f" ({title})" if title else ""))
    note = seeds_note(ns, what="Bars", band="error bars")
    if drew_ref:
        note += (f" Hollow diamonds: the paper's {reference['metric']} (COCO, full-size "
                 "schedules) for reference.")
    fig.tight_layout()
    legend_and_note(fig, handles, note, ncol=3)
    return fig


def main(argv=None) -> int:
    p = base_parser("python -m rethink.figures.final_ap",
                    "Bar chart of final bbox/mask AP per schedule for each init "
                    "(mean over seeds, 95%% interval).")
    add_reference_arg(p)
    add_figure_args(p)
    args = p.parse_args(argv)
    study, df = load_inputs(args)
    main_v = study["main"]
    plan = study["variants"][main_v]
    finals = variant_finals(df, study, main_v, str(args.metrics))
    reference = load_reference(args.reference)
    setup_theme(args)
    fig = draw(finals, plan, args, reference, variant_title(main_v, plan))
    save_figure(fig, args.out_png, args.out_pdf, args.dpi)
    print(f"wrote {args.out_png} and {args.out_pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
