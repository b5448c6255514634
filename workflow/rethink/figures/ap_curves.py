"""Figure: bbox AP and mask AP vs training iterations (cf. the paper's Fig. 1).

The study's main variant only. Scratch vs ImageNet-pretrained in two colours;
every schedule's branch has its own line style/alpha and its end is marked with
a marker and the schedule name. The shared "trunk" (base LR, common to all
schedules) is drawn once, so the learning-rate drops show up as the jumps where
branches leave it. Each line is the mean over seeds, shaded with its 95%
t-interval (no band with one seed).

The pretrained curves are shifted right by the pre-training cost in detection
iterations (``images_seen / batch_size`` of the main variant) and that span is
shaded and labelled "ImageNet pre-training". The cost comes from ``--pretrain
pretrain_metrics.json`` or else from study.json's ``pretrain``; when neither
has it (user-supplied backbone) no shift is drawn and the caption says so.

    python -m rethink.figures.ap_curves --study study.json --metrics all_metrics.csv \
        [--pretrain pretrain_metrics.json] --out-png ap_curves.png --out-pdf ap_curves.pdf
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, StrMethodFormatter
from matplotlib.transforms import blended_transform_factory

from rethink.analysis.inputs import TASKS, load_pretrain, ordered_schedules, pretrain_offset
from rethink.figures.common import (
    MARKERS,
    TASK_LABELS,
    add_figure_args,
    base_parser,
    draw_curves,
    init_colors,
    init_label,
    load_inputs,
    mean_curves,
    run_cli,
    save_figure,
    schedule_styles,
    seeds_note,
    setup_theme,
    variant_title,
)

SHIFTED_INITS = ("pretrained",)
# break the x axis when the pre-training span exceeds this many times the
# longest detection schedule (otherwise the detection curves are squashed)
BREAK_RATIO = 1.5


def _draw_task(ax, agg, scheds, inits, colors, styles, shift, offset):
    """All curves of one task on *ax* (pre-training span shaded); return the largest x."""
    if offset > 0:
        ax.axvspan(0, offset, color="0.55", alpha=0.18, lw=0, zorder=0)
    return draw_curves(ax, agg, scheds, inits, colors, styles, shift)


def _break_marks(axl, axr):
    """Diagonal '//' marks on the facing spines of a broken x axis."""
    kw = dict(marker=[(-1, -1.5), (1, 1.5)], markersize=9, linestyle="none",
              color="0.35", mec="0.35", mew=1.2, clip_on=False, zorder=10)
    axl.plot([1, 1], [0, 1], transform=axl.transAxes, **kw)
    axr.plot([0, 0], [0, 1], transform=axr.transAxes, **kw)
    axl.spines["right"].set_visible(False)
    axr.spines["left"].set_visible(False)
    axr.tick_params(labelleft=False, left=False)


def draw(curves, plan, pretrain, args, title_variant=""):
    """*curves*: task -> :func:`mean_curves` frame of the variant drawn."""
    scheds = ordered_schedules(plan)
    inits = list(plan["inits"])
    colors = init_colors(inits, args.palette)
    styles = schedule_styles(scheds)
    offset = pretrain_offset(pretrain, plan)
    shift = {i: (offset if i in SHIFTED_INITS else 0.0) for i in inits}
    batch = plan["batch_size"]
    longest = float(max([s["iters"] for s in scheds]
                        + [c["iteration"].max() for c in curves.values()] + [1]))
    broken = offset > BREAK_RATIO * longest

    fig = plt.figure(figsize=(13, 5.2))
    outer = fig.add_gridspec(1, 2, wspace=0.2)
    fig.subplots_adjust(left=0.06, right=0.98, top=0.86, bottom=0.13)
    groups = []  # (task, [axes])
    if broken:
        pad = 0.1 * longest
        xl = (0.0, longest + pad)                       # scratch curves
        xr = (offset - pad, offset + longest + pad)     # shifted pretrained curves
        for i, task in enumerate(TASKS):
            sub = outer[i].subgridspec(1, 2, width_ratios=[xl[1] - xl[0], xr[1] - xr[0]],
                                       wspace=0.06)
            axl = fig.add_subplot(sub[0])
            axr = fig.add_subplot(sub[1], sharey=axl)
            for ax in (axl, axr):
                _draw_task(ax, curves[task], scheds, inits, colors, styles, shift, offset)
            axl.set_xlim(*xl)
            axr.set_xlim(*xr)
            _break_marks(axl, axr)
            groups.append((task, [axl, axr]))
    else:
        for i, task in enumerate(TASKS):
            ax = fig.add_subplot(outer[i])
            xmax = _draw_task(ax, curves[task], scheds, inits, colors, styles, shift, offset)
            ax.set_xlim(0, max(xmax, offset, 1.0) * 1.08)
            groups.append((task, [ax]))

    if offset > 0:
        xlabel = f"iterations (batch {batch}; pre-training converted to detection iterations)"
    else:
        xlabel = f"training iterations (batch {batch})"
    for task, axes in groups:
        for ax in axes:  # integer iteration ticks, few enough not to collide
            ax.xaxis.set_major_locator(MaxNLocator(nbins=3 if broken else 6, integer=True))
            ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax0 = axes[0]
        lo = min(0.0, ax0.get_ylim()[0])
        ax0.set_ylim(bottom=lo)
        ax0.set_ylabel(f"{TASK_LABELS[task]} (%)")
        # centre title and x label over the whole (possibly broken) panel
        p0, p1 = axes[0].get_position(), axes[-1].get_position()
        cx = ((p0.x0 + p1.x1) / 2 - p0.x0) / p0.width
        ax0.set_title(TASK_LABELS[task], pad=12 if broken else 6)
        ax0.title.set_x(cx)
        ax0.set_xlabel(xlabel)
        ax0.xaxis.set_label_coords(cx, -0.1)
        if offset > 0:
            lab = "ImageNet pre-training"
            if broken:
                lab += f"\n({offset:,.0f} it, axis broken)"
                ax_t, x_t = axes[0], 0.5
                trans = ax_t.transAxes
            else:
                ax_t, x_t = axes[0], offset / 2
                trans = blended_transform_factory(ax_t.transData, ax_t.transAxes)
            ax_t.text(x_t, 0.97, lab, transform=trans, ha="center", va="top",
                      fontsize="small", color="0.25", zorder=6)

    handles = [Line2D([], [], color=colors[i], lw=2.2, marker=MARKERS[k % len(MARKERS)],
                      label=init_label(i)) for k, i in enumerate(inits)]
    handles.append(Line2D([], [], color="0.3", lw=2.2, ls="-", label="shared trunk (base LR)"))
    for s in scheds:
        ls, alpha = styles[s["name"]]
        handles.append(Line2D([], [], color="0.3", lw=1.8, ls=ls, alpha=alpha,
                              label=f"{s['name']} schedule ({s['iters']} it)"))
    if offset > 0:
        handles.append(Patch(color="0.55", alpha=0.18, label="ImageNet pre-training"))
    if any(c["n"].max() >= 2 for c in curves.values()):
        handles.append(Patch(color="0.3", alpha=0.18, label="95% interval over seeds"))
    fig.suptitle("Mask R-CNN: training from random initialization vs ImageNet pre-training"
                 + (f" ({title_variant})" if title_variant else ""))
    ncol = min(len(handles), 4)
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.015),
               ncol=ncol, frameon=False, fontsize="small")
    if pretrain is not None:
        cap = (f"Pre-trained curves are shifted right by the ImageNet pre-training cost: "
               f"{pretrain['images_seen']:,.0f} images / batch {batch} = {offset:,.0f} "
               f"detection iterations (shaded).")
    else:
        cap = ("No pre-training metrics given (user-supplied backbone checkpoint): "
               "pre-trained curves are NOT shifted by the pre-training cost.")
    cap += " LR drops show as jumps where each schedule leaves the trunk. "
    cap += seeds_note(np.concatenate([c["n"].to_numpy() for c in curves.values()]))
    nrows = -(-len(handles) // ncol)
    fig.text(0.5, 0.005 - 0.05 * nrows, cap, ha="center", va="top", fontsize="small",
             wrap=True)
    return fig


def main(argv=None) -> int:
    p = base_parser("python -m rethink.figures.ap_curves",
                    "Plot bbox/mask AP vs iterations for all schedules and inits.")
    p.add_argument("--pretrain", default=None,
                   help="pretrain metrics JSON (images_seen); when omitted, study.json's "
                        "'pretrain' is used; when that is null too (user-supplied backbone) "
                        "curves are not shifted")
    add_figure_args(p)
    args = p.parse_args(argv)
    study, df = load_inputs(args)
    main_v = study["main"]
    plan = study["variants"][main_v]
    curves = {t: mean_curves(df, study, main_v, t, "AP", str(args.metrics)) for t in TASKS}
    pretrain = load_pretrain(args.pretrain) if args.pretrain else study.get("pretrain")
    setup_theme(args)
    fig = draw(curves, plan, pretrain, args, title_variant=variant_title(main_v, plan))
    save_figure(fig, args.out_png, args.out_pdf, args.dpi)
    print(f"wrote {args.out_png} and {args.out_pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
