"""Figure: how the verdict depends on the pre-training: its strength, and its kind.

One row per base (main, and each model variant a study.pretrainings entry names as its
`base`): its scratch runs, its own pre-training's and every pretraining variant's on it (a
shorter or otherwise different pre-training, or a self-supervised one: MAE, SimSiam, the
third init), each labelled with its method, epochs and val (or kNN) top-1. Left: final bbox
AP per schedule, mean over seeds with the 95% t-interval. Right: pretrained - scratch per
schedule, paired by seed (the difference the claims test), with its interval and a zero
line: a weaker pre-training's lead should shrink sooner.

    python -m rethink.figures.pretrain_strength --study study.json --metrics all_metrics.csv \
        --out-png pretrain_strength.png --out-pdf pretrain_strength.pdf
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import seaborn as sns

from rethink.analysis.inputs import MetricsError, describe_pretraining, ordered_schedules
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
    return f"pretrained ({name}: {describe_pretraining(pre)})"


def main(argv=None) -> int:
    p = base_parser("python -m rethink.figures.pretrain_strength",
                    "Final bbox AP per schedule for each pre-training strength, and its lead over scratch.")
    add_figure_args(p)
    args = p.parse_args(argv)
    study, df = load_inputs(args)
    main_name = study["main"]
    others = variants_of_kind(study, "pretraining")[1:]
    if not others:
        raise MetricsError(f"{args.study}: no pretraining variant (study.pretrainings) to compare")
    bases = list(dict.fromkeys(study["variants"][n].get("scratch_from") or main_name for n in others))
    setup_theme(args)
    colors = sns.color_palette(args.palette, len(others) + 2)  # enough for the fullest row
    fig, axes = plt.subplots(len(bases), 2, figsize=(11.0, 4.6 * len(bases)), squeeze=False)
    ns, handles = [], []
    for (ap, gap), base in zip(axes, bases):
        names = [base] + [n for n in others if (study["variants"][n].get("scratch_from") or main_name) == base]
        scratch = variant_finals(df, study, base)
        base_scheds = ordered_schedules(study["variants"][base])
        draw_band_series(ap, final_series(scratch, "scratch", base_scheds), colors[0], f"scratch of {base} (random init)", "o")
        for k, name in enumerate(names, start=1):
            fin = scratch if name == base else variant_finals(df, study, name)
            scheds = ordered_schedules(study["variants"][name])
            label = pretraining_label(name, study)
            pts = final_series(fin, "pretrained", scheds)
            draw_band_series(ap, pts, colors[k], label, "s")
            draw_band_series(gap, final_series(fin, "pretrained", scheds, minus=scratch), colors[k], label, "s")
            ns += [pt[4] for pt in pts]
        gap.axhline(0.0, color="0.3", lw=1.0)
        for ax in (ap, gap):
            ax.set_xticks([s["multiple"] for s in base_scheds], [s["name"] for s in base_scheds])
            ax.set_xlabel("schedule")
        ap.set_ylabel("final bbox AP (%)")
        gap.set_ylabel("pretrained - scratch (AP points, paired by seed)")
        ap.set_title(f"{base}: final AP per schedule")
        gap.set_title(f"{base}: pre-training's lead")
        handles += ap.get_legend_handles_labels()[0]
    fig.suptitle("Pre-training strength and kind: the same detection runs from each pre-training")
    legend_and_note(fig, handles, seeds_note(ns, what="Lines") + " Each row's scratch is the same runs throughout.",
                    ncol=2)
    save_figure(fig, args.out_png, args.out_pdf, args.dpi)
    print(f"wrote {args.out_png} and {args.out_pdf} ({len(others)} pre-trainings on {len(bases)} base(s))")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
