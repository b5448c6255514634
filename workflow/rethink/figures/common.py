"""Shared pieces of the figure/table command lines.

* :func:`base_parser` -- argparse with ``--study`` and ``--metrics``;
  :func:`add_figure_args` adds ``--out-png --out-pdf --dpi --style --context
  --palette``; :func:`add_reference_arg` adds ``--reference``.
* :func:`load_inputs` -- study.json + tidy CSV, every row checked against its
  variant's plan.
* :func:`mean_curves` / :func:`draw_curves` -- AP vs iterations as the mean
  over seeds with a shaded 95% t-interval (none where only one seed has a
  point), trunk drawn once and each schedule's branch leaving it at its fork.
* :func:`setup_theme` -- seaborn theme on the Agg backend.
* :func:`init_colors` / :func:`schedule_styles` -- consistent encodings.
* :func:`save_figure` -- atomic PNG + PDF save.
* :func:`run_cli` -- turns known input errors into ``error: ...`` + exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot/seaborn import

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from rethink.analysis.inputs import MetricsError, load_study  # noqa: E402
from rethink.analysis.results import check_against_study, read_metrics_csv, variant_frame  # noqa: E402
from rethink.analysis.stats import LEVEL, aggregate_seeds, mean_ci  # noqa: E402
from rethink.core.atomic import atomic_write  # noqa: E402
from rethink.core.schedule import TRUNK  # noqa: E402

INIT_LABELS = {"scratch": "random init (scratch)", "pretrained": "ImageNet pre-trained"}
TASK_LABELS = {"bbox": "bbox AP", "segm": "mask AP"}
LINESTYLES = ["--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1))]
MARKERS = ["o", "s", "D", "^", "v", "P"]
BAND_ALPHA = 0.18
SYNCBN_NOTE = ("SyncBN synchronises batch statistics across processes; in a single "
               "(CPU) process it is plain BatchNorm.")


def init_label(init: str) -> str:
    return INIT_LABELS.get(init, init)


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--study", required=True,
                   help="study.json written by the planning step (variants, seeds, inits)")
    p.add_argument("--metrics", required=True,
                   help="tidy metrics CSV written by `python -m rethink.analysis.results`")
    return p


def add_reference_arg(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--reference", default=None,
                   help="JSON of the paper's numbers (AP in percent), drawn as hollow "
                        "'paper' markers; omit for none")
    return p


def load_inputs(args: argparse.Namespace) -> tuple[dict, pd.DataFrame]:
    """study.json and the tidy CSV, every row checked against its variant's plan."""
    study = load_study(args.study)
    df = read_metrics_csv(args.metrics)
    check_against_study(df, study, str(args.metrics))
    return study, df


# --------------------------------------------------------------------------
# mean curves over seeds
# --------------------------------------------------------------------------
def mean_curves(df: pd.DataFrame, study: Mapping, variant: str, task: str,
                metric: str = "AP", source: str = "metrics") -> pd.DataFrame:
    """Mean over seeds per (init, branch, iteration) of one variant, in percent.

    Columns: ``init, branch, iteration, mean, std, lo, hi, n`` (lo/hi: 95%
    t-interval, NaN where n < 2). Raises if the variant has no such rows.
    """
    sub = variant_frame(df, study, variant, task, metric, source)
    agg = aggregate_seeds(sub, ["init", "branch", "iteration"], level=LEVEL)
    for c in ("mean", "std", "lo", "hi"):
        agg[c] = 100.0 * agg[c]
    return agg


def _series(agg, init, branch, lo=None, hi=None):
    sub = agg[(agg["init"] == init) & (agg["branch"] == branch)]
    if lo is not None:
        sub = sub[sub["iteration"] >= lo]
    if hi is not None:
        sub = sub[sub["iteration"] <= hi]
    sub = sub.sort_values("iteration")
    return tuple(sub[c].to_numpy(dtype=float) for c in ("iteration", "mean", "lo", "hi"))


def _band(ax, x, lo, hi, color, alpha):
    """Shade [lo, hi] where both are finite (n >= 2); nothing at all for n = 1."""
    ok = np.isfinite(lo) & np.isfinite(hi)
    if ok.sum() == 0:
        return
    ax.fill_between(x, np.where(ok, lo, 0.0), np.where(ok, hi, 0.0), where=ok,
                    color=color, alpha=BAND_ALPHA * alpha, lw=0, zorder=2)


def draw_curves(ax, agg: pd.DataFrame, scheds: Sequence[Mapping], inits: Sequence[str],
                colors: Mapping, styles: Mapping, shift: Mapping | None = None,
                annotate: bool = True, lw: float = 1.8) -> float:
    """Mean AP curves (+ band) of every init and schedule on *ax*; return the largest x.

    The trunk is drawn once (solid); each schedule's branch joins it at the
    fork, and the schedule's final point gets a marker (and its name when
    *annotate*). *shift* moves an init's curves right (pre-training cost).
    """
    shift = shift or {}
    xmax = 0.0
    for k, init in enumerate(inits):
        c, dx = colors[init], float(shift.get(init, 0.0))
        marker = MARKERS[k % len(MARKERS)]
        tx, ty, tlo, thi = _series(agg, init, TRUNK)
        if len(tx):
            ax.plot(tx + dx, ty, color=c, lw=lw + 0.4, ls="-", zorder=3)
            _band(ax, tx + dx, tlo, thi, c, 1.0)
            xmax = max(xmax, float(tx.max() + dx))
        for s in scheds:
            ls, alpha = styles[s["name"]]
            bx, by, blo, bhi = _series(agg, init, s["name"], hi=s["iters"])
            keep = bx > s["fork"]
            bx, by, blo, bhi = bx[keep], by[keep], blo[keep], bhi[keep]
            # join the branch to the trunk at the fork (where the LR drops)
            fx, fy, flo, fhi = _series(agg, init, TRUNK, lo=s["fork"], hi=s["fork"])
            x = np.concatenate([fx, bx]) + dx
            y = np.concatenate([fy, by])
            if len(x) > 1:
                ax.plot(x, y, color=c, ls=ls, alpha=alpha, lw=lw, zorder=3)
                _band(ax, x, np.concatenate([flo, blo]), np.concatenate([fhi, bhi]), c, alpha)
            if len(x):
                xmax = max(xmax, float(x.max()))
            # the schedule's final point (on its branch, or on the trunk)
            if s["fork"] < s["iters"]:
                ex, ey = bx, by
            else:
                ex, ey, _, _ = _series(agg, init, TRUNK, lo=s["iters"], hi=s["iters"])
            if len(ex) and ex[-1] == s["iters"] and np.isfinite(ey[-1]):
                ax.plot(ex[-1] + dx, ey[-1], marker=marker, ms=6, color=c,
                        mec="white", mew=1.0, ls="none", zorder=5)
                if annotate:
                    ax.annotate(s["name"], (ex[-1] + dx, ey[-1]),
                                xytext=(5, 3 if k % 2 == 0 else -11),
                                textcoords="offset points", fontsize="small",
                                color=c, fontweight="bold", zorder=6)
    return xmax


def seeds_note(ns: Sequence[int] | np.ndarray, level: float = LEVEL, what: str = "Lines",
               band: str = "shaded") -> str:
    """Caption sentence on what the lines (bars) and bands are, given the n of each point."""
    ns = [int(n) for n in np.asarray(ns).ravel() if n > 0]
    if not ns or max(ns) < 2:
        return f"One seed (n=1): {what.lower()} are single runs, no interval drawn."
    lo, hi = min(ns), max(ns)
    n = f"{hi}" if lo == hi else f"{lo}-{hi}"
    return (f"{what}: mean over {n} seeds; {band}: {level:.0%} t-interval of the mean"
            + (" (none where n=1)." if lo < 2 else "."))


def legend_and_note(fig, handles, note: str, ncol: int = 5) -> None:
    """Legend centred under the axes and the note under the legend (never on top of it)."""
    leg = fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                     ncol=min(len(handles), ncol), frameon=False, fontsize="small")
    fig.canvas.draw()
    y0 = leg.get_window_extent().transformed(fig.transFigure.inverted()).y0
    fig.text(0.5, y0 - 0.01, note, ha="center", va="top", fontsize="small", wrap=True)


def paper_marker(ax, x, y, color, label=None, size=9, zorder=7):
    """The paper's number as a hollow marker (so it never hides a measured one)."""
    ax.plot([x], [y], marker="D", ms=size, mfc="none", mec=color, mew=1.6, ls="none",
            zorder=zorder, label=label)


def variant_title(name: str, plan: Mapping) -> str:
    """A panel title for a variant: name, data regime and training-set size."""
    norm = str(plan.get("norm", ""))
    bits = [norm if norm != name else ""]
    n = plan.get("train_images")
    regime = plan.get("regime", "full")
    if regime == "full" or plan.get("kind") == "main":
        bits.append("full data" + (f", {n:,} images" if isinstance(n, int) else ""))
    else:
        bits.append(f"{n:,} images" if isinstance(n, int) else str(regime))
    return f"{name} ({'; '.join(b for b in bits if b)})"


def add_figure_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--out-png", required=True, help="output PNG path")
    p.add_argument("--out-pdf", required=True, help="output PDF path")
    p.add_argument("--dpi", type=int, default=150, help="PNG resolution (default 150)")
    p.add_argument("--style", default="whitegrid",
                   help="seaborn style: white, whitegrid, dark, darkgrid, ticks")
    p.add_argument("--context", default="notebook",
                   help="seaborn context: paper, notebook, talk, poster")
    p.add_argument("--palette", default="colorblind",
                   help="seaborn/matplotlib palette name for the inits")
    return p


def is_syncbn(norm: str) -> bool:
    return str(norm).replace("_", "").replace("-", "").lower() == "syncbn"


def variant_panels(df: pd.DataFrame, study: Mapping, names: Sequence[str],
                   args: argparse.Namespace, title: str, panel_title: Callable,
                   reference: Mapping | None = None, regime_ref: Callable | None = None,
                   sharey: bool = False, notes: Sequence[str] = ()):
    """One panel per variant: bbox AP vs iterations, both inits, every schedule.

    Mean over seeds with a 95% band. With *reference* the paper's numbers are
    hollow markers: the full-data schedules of the main variant at each
    schedule's end; a regime's number (``regime_ref(name, plan) -> {init: AP}``)
    at the end of its longest schedule. Returns the figure.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    from rethink.analysis.inputs import ordered_schedules

    inits = list(study["inits"])
    colors = init_colors(inits, args.palette)
    n = len(names)
    ncols = min(n, 4)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.9 * nrows + 0.9),
                             sharey=sharey, squeeze=False)
    ns, drew_ref = [], False
    for ax, name in zip(axes.flat, names):
        plan = study["variants"][name]
        scheds = ordered_schedules(plan)
        agg = mean_curves(df, study, name, "bbox", "AP", str(args.metrics))
        ns.append(agg["n"].to_numpy())
        v_inits = [i for i in inits if i in plan["inits"]]
        xmax = draw_curves(ax, agg, scheds, v_inits, colors, schedule_styles(scheds))
        if reference:
            ref_pts = []
            if name == study["main"] and reference.get("task") == "bbox":
                for init in v_inits:
                    for s in scheds:
                        r = reference.get("schedules", {}).get(init, {}).get(s["name"])
                        if r is not None:
                            ref_pts.append((s["iters"], r, colors[init]))
            elif regime_ref is not None and reference.get("task") == "bbox":
                end = max(s["iters"] for s in scheds)
                for init, r in (regime_ref(name, plan) or {}).items():
                    if init in colors:
                        ref_pts.append((end, r, colors[init]))
            for x, y, c in ref_pts:
                paper_marker(ax, x, y, c)
                drew_ref = True
        ax.set_xlim(0, max(xmax, 1.0) * 1.1)
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax.set_title(panel_title(name, plan), fontsize="medium")
        ax.set_xlabel(f"training iterations (batch {plan['batch_size']})")
        ax.set_ylabel("bbox AP (%)")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)

    handles = [Line2D([], [], color=colors[i], lw=2.2, marker=MARKERS[k % len(MARKERS)],
                      label=init_label(i)) for k, i in enumerate(inits)]
    handles.append(Line2D([], [], color="0.3", lw=2.2, ls="-", label="shared trunk (base LR)"))
    handles.append(Line2D([], [], color="0.3", lw=1.8, ls="--",
                          label="schedule branches (named at their ends)"))
    all_n = np.concatenate(ns) if ns else np.array([], dtype=int)
    if len(all_n) and all_n.max() >= 2:
        handles.append(Patch(color="0.3", alpha=BAND_ALPHA, label=f"{LEVEL:.0%} interval over seeds"))
    if drew_ref:
        handles.append(Line2D([], [], marker="D", ms=8, mfc="none", mec="0.2", mew=1.6, lw=0,
                              label="paper"))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.0, 1, 0.97))
    text = [seeds_note(all_n)]
    if drew_ref:
        text.append("Hollow diamonds: the paper's COCO numbers (full-size schedules), "
                    "for reference only.")
    text += list(notes)
    legend_and_note(fig, handles, " ".join(text), ncol=3 if n < 3 else 5)
    return fig


def setup_theme(args: argparse.Namespace) -> None:
    if args.dpi <= 0:
        raise MetricsError(f"--dpi must be positive, got {args.dpi}")
    if args.style not in ("white", "whitegrid", "dark", "darkgrid", "ticks"):
        raise MetricsError(f"unknown --style {args.style!r}")
    if args.context not in ("paper", "notebook", "talk", "poster"):
        raise MetricsError(f"unknown --context {args.context!r}")
    try:
        sns.color_palette(args.palette)
    except (ValueError, KeyError) as e:
        raise MetricsError(f"unknown --palette {args.palette!r} ({e})") from None
    sns.set_theme(style=args.style, context=args.context, palette=args.palette)
    plt.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42,
                         "savefig.bbox": "tight"})


def init_colors(inits: Sequence[str], palette: str) -> dict:
    cols = sns.color_palette(palette, max(len(inits), 2))
    return {init: cols[i] for i, init in enumerate(inits)}


def schedule_styles(schedules: Sequence[Mapping]) -> dict:
    """name -> (linestyle, alpha); longer schedules more opaque."""
    n = len(schedules)
    out = {}
    for i, s in enumerate(schedules):
        alpha = 1.0 if n == 1 else 0.45 + 0.55 * i / (n - 1)
        out[s["name"]] = (LINESTYLES[i % len(LINESTYLES)], alpha)
    return out


def save_figure(fig, out_png: str | os.PathLike, out_pdf: str | os.PathLike, dpi: int) -> None:
    """Save *fig* as PNG and PDF; each goes to a temp file then os.replace."""
    atomic_write(out_png, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    atomic_write(out_pdf, lambda tmp: fig.savefig(tmp, format="pdf"))
    plt.close(fig)


def run_cli(main: Callable[[Sequence[str] | None], int],
            argv: Sequence[str] | None = None) -> int:
    """Run *main*, reporting input errors as one clean line (exit status 2)."""
    try:
        return main(argv) or 0
    except MetricsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:  # unreadable/unwritable paths, bad values
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


def fmt_pct(v: float) -> str:
    """AP fraction -> percent string with one decimal; '--' for NaN."""
    import math
    return "--" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


__all__ = [
    "INIT_LABELS", "TASK_LABELS", "MARKERS", "SYNCBN_NOTE", "base_parser", "add_figure_args",
    "add_reference_arg", "load_inputs", "mean_curves", "draw_curves", "seeds_note",
    "paper_marker", "legend_and_note", "variant_title", "variant_panels", "is_syncbn", "setup_theme", "init_colors", "schedule_styles",
    "save_figure", "run_cli", "init_label", "fmt_pct",
]


def variants_of_kind(study: Mapping, kind: str) -> list[str]:
    """The main variant, then every variant of `kind` (norm, regime) in display order."""
    return [study["main"]] + [n for n, p in study["variants"].items()
                              if p["kind"] == kind and n != study["main"]]


def final_series(fin: pd.DataFrame, init: str, scheds: Sequence[Mapping], minus: pd.DataFrame | None = None,
                 column: str = "bbox_AP") -> list[tuple]:
    """Per schedule (multiple, mean, lo, hi, n) in %: `init`'s final `column` over seeds, or
    with `minus` its difference from `minus`'s scratch runs, paired by seed."""
    out = []
    for s in scheds:
        a = fin[(fin["init"] == init) & (fin["schedule"] == s["name"])].set_index("seed")[column]
        if minus is not None:
            b = minus[(minus["init"] == "scratch") & (minus["schedule"] == s["name"])].set_index("seed")[column]
            a = (a - b).dropna()
        ci = mean_ci(a)
        out.append((s["multiple"], 100 * ci["mean"], 100 * ci["lo"], 100 * ci["hi"], ci["n"]))
    return out


def draw_band_series(ax, points: Sequence[tuple], color, label: str, marker: str, ls: str = "-") -> None:
    """A final_series as a line with its interval shaded."""
    xs, means, los, his, _ = zip(*points)
    ax.plot(xs, means, marker=marker, color=color, label=label, ls=ls)
    ax.fill_between(xs, los, his, color=color, alpha=0.18, lw=0)
