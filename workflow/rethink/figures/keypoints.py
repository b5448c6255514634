"""Figure: does training from scratch catch up on keypoints, and sooner than on boxes (the
paper's Fig. 6, Mask R-CNN keypoints)?

Each task variant (study.tasks with task: keypoints: main's model plus a keypoint head,
both inits trained on the keypoint annotations). Left: keypoint AP (COCOeval OKS AP) vs
iterations, scratch and pretrained, every schedule's branch from the shared trunk, mean
over seeds with the 95% t-interval. Right: pretrained - scratch at each schedule's end,
paired by seed, for keypoint AP and for the same runs' bbox AP, with a zero line: on
keypoints the gap should close sooner. Hollow diamonds (--reference with a "variants"
entry whose "metric" is keypoints_AP, as the COCO preset's) are the paper's numbers.
With --out-csv/--out-md it also writes the table of final keypoint metrics (and box and
mask AP) per variant, schedule and init, mean +- std over seeds, as tables/final_metrics is
for main.

    python -m rethink.figures.keypoints --study study.json --metrics all_metrics.csv \
        --out-png keypoints.png --out-pdf keypoints.pdf [--reference paper.json] \
        [--out-csv keypoints.csv --out-md keypoints.md]
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import seaborn as sns

from rethink.figures.common import (
    add_figure_args, add_reference_arg, base_parser, draw_band_series, draw_curves, final_series,
    init_colors, init_label, legend_and_note, load_inputs, mean_curves, paper_marker, run_cli,
    save_figure, schedule_styles, seeds_note, setup_theme,
)
from rethink.atomic import write_text
from rethink.figures.final_table import build_table, to_csv, to_markdown
from rethink.results import MetricsError, load_reference, ordered_schedules, variant_finals

GAPS = (("keypoints_AP", "keypoint AP", "o", "-"), ("bbox_AP", "bbox AP (same runs)", "s", "--"))
# the table's columns (as rethink.figures.final_table.COLUMNS): COCOeval's keypoint numbers,
# then the same runs' box and mask AP
TABLE_COLUMNS = [(f"keypoints_{m}", f"keypoints_{m}", f"keypoint {m}", "")
                 for m in ("AP", "AP50", "AP75", "APm", "APl", "AR")]
TABLE_COLUMNS += [("bbox_AP", "bbox_AP", "box AP", ""), ("segm_AP", "mask_AP", "mask AP", "")]


def final_tables(df, study, names) -> tuple[str, str]:
    """(CSV, Markdown) of every keypoint variant's final metrics, a `variant` column first."""
    csvs, mds = [], []
    for name in names:
        table = build_table(variant_finals(df, study, name), study["variants"][name], TABLE_COLUMNS)
        text = to_csv(table, TABLE_COLUMNS).splitlines()
        csvs += ([f"variant,{text[0]}"] if not csvs else []) + [f"{name},{line}" for line in text[1:]]
        mds.append(f"Keypoint task `{name}`, final metrics in percent (mean ± std over seeds):\n\n"
                   + to_markdown(table, TABLE_COLUMNS))
    return "\n".join(csvs) + "\n", "\n".join(mds)


def main(argv=None) -> int:
    p = base_parser("python -m rethink.figures.keypoints",
                    "Keypoint AP vs iterations, scratch and pretrained, and the gap against bbox AP's.")
    add_figure_args(p)
    add_reference_arg(p)
    p.add_argument("--out-csv", help="also write the final keypoint metrics table (CSV)")
    p.add_argument("--out-md", help="... and as Markdown")
    args = p.parse_args(argv)
    study, df = load_inputs(args)
    ref = load_reference(args.reference)
    names = [n for n, v in study["variants"].items() if v.get("task") == "keypoints"]
    if not names:
        raise MetricsError(f"{args.study}: no keypoint variant (study.tasks with task: keypoints)")
    setup_theme(args)
    fig, axes = plt.subplots(len(names), 2, figsize=(11.0, 4.4 * len(names)), squeeze=False)
    ns, handles = [], []
    for (curves, gap), name in zip(axes, names):
        plan = study["variants"][name]
        scheds, inits = ordered_schedules(plan), plan["inits"]
        colors = init_colors(inits, args.palette)
        agg = mean_curves(df, study, name, "keypoints")
        draw_curves(curves, agg, scheds, inits, colors, schedule_styles(scheds))
        ns += agg["n"].tolist()
        wanted = ref.get("variants", {}).get(name, {}) if ref and ref.get("variant_metrics", {}).get(name) == "keypoints_AP" else {}
        for init in inits:
            for s in scheds:
                if s["name"] in wanted.get(init, {}):
                    paper_marker(curves, s["iters"], wanted[init][s["name"]], colors[init])
        curves.set_xlabel("iteration")
        curves.set_ylabel("keypoint AP (%)")
        curves.set_title(f"{name}: keypoint AP vs iterations")
        if {"scratch", "pretrained"} <= set(inits):
            fin = variant_finals(df, study, name)
            for color, (column, label, marker, ls) in zip(sns.color_palette(args.palette, 4)[2:], GAPS):
                draw_band_series(gap, final_series(fin, "pretrained", scheds, minus=fin, column=column),
                                 color, label, marker, ls)
            gap.axhline(0.0, color="0.3", lw=1.0)
            gap.set_xticks([s["multiple"] for s in scheds], [s["name"] for s in scheds])
            gap.legend(fontsize="small")
        gap.set_xlabel("schedule")
        gap.set_ylabel("pretrained - scratch (AP points, paired by seed)")
        gap.set_title("Pre-training's lead at each schedule's end")
        handles = [plt.Line2D([], [], color=colors[i], lw=2, label=init_label(i)) for i in inits]
    fig.suptitle("Keypoints: scratch vs pre-trained (main's model plus a keypoint head)")
    note = seeds_note(ns, what="Lines") + (" Hollow diamonds: the paper's numbers." if ref else "")
    legend_and_note(fig, handles, note, ncol=2)
    save_figure(fig, args.out_png, args.out_pdf, args.dpi)
    print(f"wrote {args.out_png} and {args.out_pdf} ({len(names)} keypoint variant(s))")
    if args.out_csv or args.out_md:
        csv, md = final_tables(df, study, names)
        for path, text in ((args.out_csv, csv), (args.out_md, md)):
            if path:
                write_text(path, text)
                print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
