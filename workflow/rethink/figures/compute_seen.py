"""Figure: images, instances and pixels seen, pre-training + fine-tuning vs from scratch
(the paper's Figure 2, from this run's own counts).

Three log-scale panels. For each schedule of one variant (the main one by default) two
bars: the pretrained model's, stacked from its pre-training part (hatched) and its
fine-tuning part, and the from-scratch model's. The paper's figure puts a pre-trained
model at a typical schedule next to a scratch model at the longer schedule where it
catches up; with every schedule side by side both of its bars are here, and so is each
other pairing. Where pre-training was not counted (a given backbone checkpoint) only the
fine-tuning part is drawn and labelled "+?".

    python -m rethink.figures.compute_seen --compute compute_seen.csv \
        --out-png compute_seen.png --out-pdf compute_seen.pdf [--variant main]
"""

from __future__ import annotations

import argparse
import math
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from rethink.analysis.inputs import MetricsError
from rethink.figures.common import add_figure_args, init_colors, init_label, run_cli, save_figure, setup_theme

KINDS = ("images", "instances", "pixels")
NUMERIC = (["iterations", "batch_size", "train_images"]
           + [f"{p}_{k}" for p in ("pretrain", "finetune", "total") for k in KINDS])
NEEDED = ["variant", "schedule", "init"] + NUMERIC
PANEL_TITLES = {"images": "images seen", "instances": "instances seen",
                "pixels": "pixels seen"}


def read_compute(path) -> pd.DataFrame:
    """compute_seen.csv (``python -m rethink.analysis.compute``), its columns checked."""
    try:
        df = pd.read_csv(path, dtype={"variant": str, "schedule": str, "init": str},
                         keep_default_na=False, na_values={c: [""] for c in NEEDED})
    except FileNotFoundError:
        raise MetricsError(f"{path}: compute CSV not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise MetricsError(f"{path}: cannot parse compute CSV ({e})") from None
    missing = [c for c in NEEDED if c not in df.columns]
    if missing:
        raise MetricsError(f"{path}: compute CSV is missing column(s) {', '.join(missing)}")
    if df.empty:
        raise MetricsError(f"{path}: compute CSV has no rows")
    for c in NUMERIC:
        try:
            df[c] = pd.to_numeric(df[c]).astype("float64")
        except (ValueError, TypeError) as e:
            raise MetricsError(f"{path}: column {c!r} must be numeric ({e})") from None
    return df


def human(v: float) -> str:
    """1234 -> '1.2k', 3.4e9 -> '3.4G'."""
    if not math.isfinite(v):
        return "?"
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.3g}"


def draw(df: pd.DataFrame, variant: str, args) -> plt.Figure:
    sub = df[df["variant"] == variant]
    scheds = (sub.drop_duplicates("schedule").sort_values("iterations", kind="stable")
              [["schedule", "iterations", "batch_size", "train_images"]].to_dict("records"))
    inits = list(dict.fromkeys(sub["init"]))
    colors = init_colors(inits, args.palette)
    # pre-training + fine-tuning first, from scratch second, as in the paper
    order = [i for i in ("pretrained", "scratch") if i in inits] + \
            [i for i in inits if i not in ("pretrained", "scratch")]
    width = 0.8 / len(order)
    xs = np.arange(len(scheds))
    fig, axes = plt.subplots(1, 3, figsize=(max(10.5, 3.0 + 2.2 * len(scheds) * 1.6), 4.6))
    unknown_pre = False
    for ax, kind in zip(axes, KINDS):
        lo = math.inf
        for k, init in enumerate(order):
            pre, fine = [], []
            for s in scheds:
                row = sub[(sub["init"] == init) & (sub["schedule"] == s["schedule"])]
                pre.append(float(row[f"pretrain_{kind}"].iloc[0]) if len(row) else 0.0)
                fine.append(float(row[f"finetune_{kind}"].iloc[0]) if len(row) else math.nan)
            pre, fine = np.array(pre), np.array(fine)
            pos = xs - 0.4 + width * (k + 0.5)
            c = colors[init]
            known = np.isfinite(pre)
            unknown_pre |= bool((~known).any())
            base = np.where(known, pre, 0.0)
            if (base > 0).any():
                ax.bar(pos, base, width=width * 0.95, color=c, alpha=0.4, hatch="//",
                       edgecolor=c, lw=0, zorder=3)
            bars = ax.bar(pos, np.nan_to_num(fine), bottom=base, width=width * 0.95, color=c,
                          zorder=3)
            total = np.where(known, base + fine, fine)
            ax.bar_label(bars, labels=[human(t) + ("" if ok else "+?")
                                       for t, ok in zip(total, known)],
                         padding=2, fontsize="x-small")
            vals = np.concatenate([base[base > 0], fine[np.isfinite(fine) & (fine > 0)]])
            if len(vals):
                lo = min(lo, float(vals.min()))
        ax.set_yscale("log")
        if math.isfinite(lo):
            top = ax.get_ylim()[1]
            ax.set_ylim(lo / 4, top * 4)
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{s['schedule']}\n({int(s['iterations'])} it)" for s in scheds])
        ax.set_title(PANEL_TITLES[kind])
        ax.set_xlabel("detection schedule")
        ax.grid(axis="x", visible=False)
    axes[0].set_ylabel("count (log scale)")
    handles = []
    for init in order:
        if init == "pretrained":
            handles += [Patch(facecolor=colors[init], alpha=0.4, hatch="//", edgecolor=colors[init],
                              label="pre-training (ImageNet classification)"),
                        Patch(color=colors[init], label="+ fine-tuning (pre-trained init)")]
        else:
            handles.append(Patch(color=colors[init], label="from scratch (random init)"
                                 if init == "scratch" else init_label(init)))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=len(handles), frameon=False, fontsize="small")
    first = scheds[0]
    fig.suptitle(f"What training saw: pre-training + fine-tuning vs from scratch "
                 f"({variant}: {int(first['train_images']):,} train images, batch "
                 f"{int(first['batch_size'])})")
    note = ("Bar labels: totals. Pixels: image area after the detector's resize. "
            "ImageNet images count as one instance each.")
    if unknown_pre:
        note += " '+?': pre-training not counted (the backbone came from a given checkpoint)."
    fig.text(0.5, -0.08, note, ha="center", va="top", fontsize="small", wrap=True)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m rethink.figures.compute_seen",
        description="Bar chart (log scale) of the images, instances and pixels seen by "
                    "pre-training + fine-tuning and by training from scratch (paper Fig. 2).")
    p.add_argument("--compute", required=True,
                   help="compute_seen.csv written by `python -m rethink.analysis.compute`")
    p.add_argument("--variant", default=None,
                   help="variant to draw (default: the CSV's first, the study's main)")
    add_figure_args(p)
    args = p.parse_args(argv)
    df = read_compute(args.compute)
    variants = list(dict.fromkeys(df["variant"]))
    variant = args.variant or variants[0]
    if variant not in variants:
        raise MetricsError(f"{args.compute}: no rows for variant {variant!r} "
                           f"(the CSV has {variants})")
    setup_theme(args)
    fig = draw(df, variant, args)
    save_figure(fig, args.out_png, args.out_pdf, args.dpi)
    print(f"wrote {args.out_png} and {args.out_pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
