"""Figure: does a deeper or wider model, or one without normalisation, also catch up from
scratch (the paper's Fig. 3, R101, and its VGG-16 without BN/GN)?

The main variant's backbone and every model variant's (study.models: another depth, width,
architecture or normalisation, both inits trained with it, the pretrained one from its own pre-training with main's
recipe), one colour each. Left: final bbox AP per schedule, scratch solid and pretrained
dashed, mean over seeds with the 95% t-interval. Right: pretrained - scratch per schedule,
paired by seed (the difference the claims test), with its interval and a zero line.
Reference markers (--reference with a "variants" block, as the COCO preset's R101 numbers)
are the paper's.

    python -m rethink.figures.models --study study.json --metrics all_metrics.csv \
        --out-png models.png --out-pdf models.pdf [--reference paper.json]
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import seaborn as sns

from rethink.analysis.inputs import MetricsError, load_reference, ordered_schedules
from rethink.analysis.results import variant_finals
from rethink.figures.common import (
    add_figure_args,
    add_reference_arg,
    base_parser,
    draw_band_series,
    final_series,
    legend_and_note,
    load_inputs,
    paper_marker,
    run_cli,
    save_figure,
    seeds_note,
    setup_theme,
    variants_of_kind,
)


def model_label(name: str, study) -> str:
    """'main (R10, width 32, GN)' from the variant's backbone in study.json."""
    b = study["variants"][name].get("backbone") or {}
    arch = "VGG" if b.get("arch") == "vgg" else "R"
    parts = [f"{arch}{b['depth']}" if "depth" in b else "", f"width {b['width']}" if "width" in b else "",
             {"none": "no norm"}.get(b.get("norm"), b.get("norm", ""))]
    shape = ", ".join(p for p in parts if p)
    return f"{name} ({shape})" if shape else name


def paper_points(ref, study, name) -> dict:
    """{init: {schedule: AP}} of the paper for this model, if the reference has it."""
    if not ref:
        return {}
    return ref["schedules"] if name == study["main"] else ref.get("variants", {}).get(name, {})


def main(argv=None) -> int:
    p = base_parser("python -m rethink.figures.models",
                    "Final bbox AP per schedule for each backbone shape, scratch and pretrained, and the gap.")
    add_figure_args(p)
    add_reference_arg(p)
    args = p.parse_args(argv)
    study, df = load_inputs(args)
    ref = load_reference(args.reference)
    names = variants_of_kind(study, "model")
    if len(names) < 2:
        raise MetricsError(f"{args.study}: no model variant (study.models) to compare")
    setup_theme(args)
    colors = sns.color_palette(args.palette, len(names))
    fig, (ap, gap) = plt.subplots(1, 2, figsize=(11.0, 4.6))
    ns, ticks = [], {}
    for color, name in zip(colors, names):
        fin = variant_finals(df, study, name)
        scheds = ordered_schedules(study["variants"][name])
        ticks.update({s["multiple"]: s["name"] for s in scheds})
        label = model_label(name, study)
        for init, marker, ls in (("scratch", "o", "-"), ("pretrained", "s", "--")):
            pts = final_series(fin, init, scheds)
            draw_band_series(ap, pts, color, f"{label}, {init}", marker, ls)
            ns += [pt[4] for pt in pts]
            for s in scheds:
                want = paper_points(ref, study, name).get(init, {}).get(s["name"])
                if want is not None:
                    paper_marker(ap, s["multiple"], want, color)
        draw_band_series(gap, final_series(fin, "pretrained", scheds, minus=fin), color, label, "s")
    gap.axhline(0.0, color="0.3", lw=1.0)
    for ax in (ap, gap):
        ax.set_xticks(sorted(ticks), [ticks[k] for k in sorted(ticks)])
        ax.set_xlabel("schedule")
    ap.set_ylabel("final bbox AP (%)")
    gap.set_ylabel("pretrained - scratch (AP points, paired by seed)")
    ap.set_title("Final AP per schedule")
    gap.set_title("Pre-training's lead, per model")
    fig.suptitle("Other backbones: scratch vs pre-trained, each from its own pre-training")
    handles, _ = ap.get_legend_handles_labels()
    note = seeds_note(ns, what="Lines") + (" Hollow diamonds: the paper's numbers." if ref else "")
    legend_and_note(fig, handles, note, ncol=2)
    save_figure(fig, args.out_png, args.out_pdf, args.dpi)
    print(f"wrote {args.out_png} and {args.out_pdf} ({len(names)} models)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
