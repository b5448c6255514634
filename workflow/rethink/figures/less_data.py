"""Figure: training with less data (cf. the paper's Figures 7 and 8).

One panel per data regime: the full-data main variant first, for contrast,
then every study variant of kind "regime" in study.json order (largest subset
first). Each panel is bbox AP vs iterations for both inits and every schedule
of that regime (its own schedules, LR and scales), the mean over seeds with a
shaded 95% t-interval. The paper's finding to look for: with 10k images
scratch still catches up; with 1k it overfits and falls behind pre-training.

With ``--reference`` the paper's numbers are hollow "paper" markers: per
schedule on the full-data panel, and the regime's (best) number at the end of
its longest schedule.

    python -m rethink.figures.less_data --study study.json --metrics all_metrics.csv \
        [--reference reference.json] --out-png less_data.png --out-pdf less_data.pdf
"""

from __future__ import annotations

import sys

from rethink.analysis.inputs import load_reference
from rethink.core.kinds import on_subset
from rethink.figures.common import (
    SYNCBN_NOTE,
    add_figure_args,
    add_reference_arg,
    base_parser,
    is_syncbn,
    load_inputs,
    run_cli,
    save_figure,
    setup_theme,
    variant_panels,
    variants_of_kind,
)


def panel_title(name: str, plan) -> str:
    n = plan.get("train_images")
    size = f"{n:,} train images" if isinstance(n, int) else ""
    frac = plan.get("fraction")
    if isinstance(frac, (int, float)) and on_subset(plan.get("kind")):
        size += f" ({frac:.1%})" if size else f"{frac:.1%} of the train set"
    head = f"{name} regime" if on_subset(plan.get("kind")) else "full data"
    if not on_subset(plan.get("kind")) and name != "main":
        head += f" ({name})"
    return f"{head}\n{size}" if size else head


def main(argv=None) -> int:
    p = base_parser("python -m rethink.figures.less_data",
                    "bbox AP vs iterations for each less-data regime (and the full data), "
                    "both inits, mean over seeds with a 95%% band.")
    add_reference_arg(p)
    add_figure_args(p)
    args = p.parse_args(argv)
    study, df = load_inputs(args)
    reference = load_reference(args.reference)
    names = variants_of_kind(study, "regime")

    def regime_ref(name, plan):
        regs = (reference or {}).get("regimes", {})
        return regs.get(name) or regs.get(str(plan.get("regime")))

    notes = []
    if len(names) == 1:
        notes.append("study.json has no less-data regime variants: only the full data is shown.")
    if any(is_syncbn(study["variants"][n]["norm"]) for n in names):
        notes.append(SYNCBN_NOTE)
    setup_theme(args)
    fig = variant_panels(df, study, names, args,
                         "Training with less data: random init vs ImageNet pre-training "
                         "(cf. paper Figs. 7-8)", panel_title, reference, regime_ref,
                         notes=notes)
    save_figure(fig, args.out_png, args.out_pdf, args.dpi)
    print(f"wrote {args.out_png} and {args.out_pdf} ({len(names)} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
