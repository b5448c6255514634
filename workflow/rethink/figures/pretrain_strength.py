"""Figure: how the verdict depends on pre-training strength.

The main variant's pre-training and every pretraining variant's (study.pretrainings: the
same detection runs from a shorter or otherwise different pre-training), each labelled with
its epochs and val top-1. Left: final bbox AP per schedule, scratch (shared by all) and
each pre-training, mean over seeds with the 95% t-interval. Right: pretrained - scratch per
schedule, paired by seed (the difference the claims test), with its interval and a zero
line: a weaker pre-training's lead should shrink sooner.

    python -m rethink.figures.pretrain_strength --study study.json --metrics all_metrics.csv \
        --out-png pretrain_strength.png --out-pdf pretrain_strength.pdf
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import seaborn as sns

from rethink.analysis.inputs import MetricsError, ordered_schedules
from rethink.analysis.results import variant_finals
from rethink.figures.common import (
    add_figure_args,
    base_parser,
    draw_band_series,
    final_series,
    legend_and_note,
    load_inputs,
    run_cli,
    save_figure,
    seeds_note,
    setup_theme,
    variants_of_kind,
)


def pretraining_label(name: str, study) -> str:
    pre = study["variants"][name].get("pretrain") or (study.get("pretrain") if name == study["main"] else None)
    if not pre:
        return f"pretrained ({name})"
    epochs = pre.get("epochs", "?")
    return f"pretrained ({name}: {epochs} epoch{'' if epochs == 1 else 's'}, {100 * pre['top1']:.1f}% top-1)"


def main(argv=None) -> int:
    p = base_parser("python -m rethink.figures.pretrain_strength",
                    "Final bbox AP per schedule for each pre-training strength, and its lead over scratch.")
    add_figure_args(p)
    args = p.parse_args(argv)
    study, df = load_inputs(args)
    names = variants_of_kind(study, "pretraining")
    if len(names) < 2:
        raise MetricsError(f"{args.study}: no pretraining variant (study.pretrainings) to compare")
    main_name = study["main"]
    scratch = variant_finals(df, study, main_name)
    setup_theme(args)
    colors = sns.color_palette(args.palette, len(names) + 1)
    fig, (ap, gap) = plt.subplots(1, 2, figsize=(11.0, 4.6))
    main_scheds = ordered_schedules(study["variants"][main_name])
    draw_band_series(ap, final_series(scratch, "scratch", main_scheds), colors[0], "scratch (random init)", "o")
    ns = []
    for k, name in enumerate(names, start=1):
        fin = scratch if name == main_name else variant_finals(df, study, name)
        scheds = ordered_schedules(study["variants"][name])
        label = pretraining_label(name, study)
        pts = final_series(fin, "pretrained", scheds)
        draw_band_series(ap, pts, colors[k], label, "s")
        diff = final_series(fin, "pretrained", scheds, minus=scratch)
        draw_band_series(gap, diff, colors[k], label, "s")
        ns += [pt[4] for pt in pts]
    gap.axhline(0.0, color="0.3", lw=1.0)
    ticks = [s["multiple"] for s in main_scheds]
    for ax in (ap, gap):
        ax.set_xticks(ticks, [s["name"] for s in main_scheds])
        ax.set_xlabel("schedule")
    ap.set_ylabel("final bbox AP (%)")
    gap.set_ylabel("pretrained - scratch (AP points, paired by seed)")
    ap.set_title("Final AP per schedule")
    gap.set_title("Pre-training's lead")
    fig.suptitle("Pre-training strength: the same detection runs from each pre-training")
    handles, _ = ap.get_legend_handles_labels()
    legend_and_note(fig, handles, seeds_note(ns, what="Lines") + " Scratch is the same runs throughout.",
                    ncol=2)
    save_figure(fig, args.out_png, args.out_pdf, args.dpi)
    print(f"wrote {args.out_png} and {args.out_pdf} ({len(names)} pre-trainings)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
