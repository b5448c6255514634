"""The figure of a variant kind scored on a metric of its own: keypoint AP (study.tasks, the
paper's Fig. 6), VOC mAP (study.datasets, its VOC run), bbox AP with test-time augmentation
(study.recipes, its enhanced baselines, Fig. 5). One mechanism, one spec per kind
(:class:`Spec`; the thin modules keypoints.py, datasets.py and recipes.py hold them).

Per variant of the kind, a row: left, the metric vs iterations, scratch and pretrained, every
schedule's branch from the shared trunk, mean over seeds with the 95% t-interval (hollow
diamonds: the paper's numbers, from a --reference "variants" entry in the spec's metric);
right, pretrained - scratch at each schedule's end, paired by seed, for the spec's gap columns,
with a zero line. With --out-csv/--out-md it also writes the table of final metrics per
variant, schedule and init, mean +- std over seeds, as tables/final_metrics is for main.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import seaborn as sns

from rethink.analysis.inputs import MetricsError, load_reference, ordered_schedules
from rethink.analysis.results import variant_finals
from rethink.core.atomic import write_text
from rethink.figures.common import (
    add_figure_args,
    add_reference_arg,
    base_parser,
    draw_band_series,
    draw_curves,
    final_series,
    init_colors,
    init_label,
    legend_and_note,
    load_inputs,
    mean_curves,
    paper_marker,
    run_cli,
    save_figure,
    schedule_styles,
    seeds_note,
    setup_theme,
)
from rethink.figures.final_table import build_table, to_csv, to_markdown


@dataclass(frozen=True)
class Spec:
    prog: str            # python -m rethink.figures.<module>
    description: str
    key: str             # the study.json key that marks the kind's variants ...
    value: object        # ... and its value (None: any value but absent)
    what: str            # what the variants are, in messages: "keypoint variant"
    where: str           # where a config declares them: "study.tasks with task: keypoints"
    task: str            # the tidy task and metric drawn on the left
    metric: str
    ylabel: str
    title: str
    suptitle: str
    gaps: tuple          # (column, label, marker, linestyle) per gap series on the right
    table_columns: list  # rethink.figures.final_table column specs
    table_heading: str   # "... `{name}` ...", one per variant above its Markdown table
    fallback_task: str | None = None  # drawn instead where a variant has no `task` rows

    def variants(self, study) -> list[str]:
        return [n for n, v in study["variants"].items()
                if (v.get(self.key) == self.value if self.value is not None else v.get(self.key))]


def final_tables(spec: Spec, df, study, names) -> tuple[str, str]:
    """(CSV, Markdown) of every variant's final metrics, a `variant` column first."""
    csvs, mds = [], []
    for name in names:
        fin = variant_finals(df, study, name)
        columns = [c for c in spec.table_columns if c[0] in fin.columns]
        table = build_table(fin, study["variants"][name], columns)
        text = to_csv(table, columns).splitlines()
        csvs += ([f"variant,{text[0]}"] if not csvs else []) + [f"{name},{line}" for line in text[1:]]
        mds.append(spec.table_heading.format(name=name) + "\n\n" + to_markdown(table, columns))
    return "\n".join(csvs) + "\n", "\n".join(mds)


def run(spec: Spec, argv=None) -> int:
    p = base_parser(spec.prog, spec.description)
    add_figure_args(p)
    add_reference_arg(p)
    p.add_argument("--out-csv", help="also write the final metrics table (CSV)")
    p.add_argument("--out-md", help="... and as Markdown")
    args = p.parse_args(argv)
    study, df = load_inputs(args)
    ref = load_reference(args.reference)
    names = spec.variants(study)
    if not names:
        raise MetricsError(f"{args.study}: no {spec.what} ({spec.where})")
    setup_theme(args)
    fig, axes = plt.subplots(len(names), 2, figsize=(11.0, 4.4 * len(names)), squeeze=False)
    ns, handles = [], []
    for (curves, gap), name in zip(axes, names):
        plan = study["variants"][name]
        scheds, inits = ordered_schedules(plan), plan["inits"]
        colors = init_colors(inits, args.palette)
        task = spec.task if (df[df["variant"] == name]["task"] == spec.task).any() or not spec.fallback_task \
            else spec.fallback_task
        column = f"{task}_{spec.metric}"
        agg = mean_curves(df, study, name, task, spec.metric)
        draw_curves(curves, agg, scheds, inits, colors, schedule_styles(scheds))
        ns += agg["n"].tolist()
        mine = ref and (ref.get("variant_metrics", {}).get(name) or ref.get("metric")) == column
        wanted = ref.get("variants", {}).get(name, {}) if mine else {}
        for init in inits:
            for s in scheds:
                if s["name"] in wanted.get(init, {}):
                    paper_marker(curves, s["iters"], wanted[init][s["name"]], colors[init])
        curves.set_xlabel("iteration")
        curves.set_ylabel(spec.ylabel.format(task=task))
        curves.set_title(f"{name}: {spec.title.format(task=task)}")
        if {"scratch", "pretrained"} <= set(inits):
            fin = variant_finals(df, study, name)
            palette = sns.color_palette(args.palette, 2 + len(spec.gaps))[2:]
            for color, (col, label, marker, ls) in zip(palette, spec.gaps):
                if col in fin.columns:
                    draw_band_series(gap, final_series(fin, "pretrained", scheds, minus=fin, column=col),
                                     color, label, marker, ls)
            gap.axhline(0.0, color="0.3", lw=1.0)
            gap.set_xticks([s["multiple"] for s in scheds], [s["name"] for s in scheds])
            gap.legend(fontsize="small")
        gap.set_xlabel("schedule")
        gap.set_ylabel("pretrained - scratch (AP points, paired by seed)")
        gap.set_title("Pre-training's lead at each schedule's end")
        handles = [plt.Line2D([], [], color=colors[i], lw=2, label=init_label(i)) for i in inits]
    fig.suptitle(spec.suptitle)
    note = seeds_note(ns, what="Lines") + (" Hollow diamonds: the paper's numbers." if ref else "")
    legend_and_note(fig, handles, note, ncol=2)
    save_figure(fig, args.out_png, args.out_pdf, args.dpi)
    print(f"wrote {args.out_png} and {args.out_pdf} ({len(names)} {spec.what}(s))")
    if args.out_csv or args.out_md:
        csv, md = final_tables(spec, df, study, names)
        for path, text in ((args.out_csv, csv), (args.out_md, md)):
            if path:
                write_text(path, text)
                print(f"wrote {path}")
    return 0


def cli(spec: Spec):
    """A figure module's entry point."""
    return run_cli(lambda argv=None: run(spec, argv))
