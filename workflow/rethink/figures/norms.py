"""Figure: normalisation from scratch and pre-trained (cf. the paper's Figure 4).

One panel per normalisation on the full data: the main variant's norm first,
then every study variant of kind "norm" in study.json order. Each panel is
bbox AP vs iterations for both inits and every schedule, the mean over seeds
with a shaded 95% t-interval; panels share the y axis so norms compare
directly. The paper's point: from scratch, a normalisation that works with
small per-device batches (GN, SyncBN) is what makes training converge.

Where a norm is SyncBN the figure's note says that in a single (CPU) process
SyncBN is plain BatchNorm: there is no other process to synchronise with.

    python -m rethink.figures.norms --study study.json --metrics all_metrics.csv \
        [--reference reference.json] --out-png norms.png --out-pdf norms.pdf
"""

from __future__ import annotations

import sys

from rethink.analysis.inputs import load_reference
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
    norm = str(plan["norm"])
    head = norm + ("*" if is_syncbn(norm) else "")
    if name != norm:
        head += f" ({name})"
    return f"{head}\nbatch {plan['batch_size']}"


def main(argv=None) -> int:
    p = base_parser("python -m rethink.figures.norms",
                    "bbox AP vs iterations for each normalisation, both inits, mean over "
                    "seeds with a 95%% band.")
    add_reference_arg(p)
    add_figure_args(p)
    args = p.parse_args(argv)
    study, df = load_inputs(args)
    reference = load_reference(args.reference)
    names = variants_of_kind(study, "norm")
    notes = []
    if len(names) == 1:
        notes.append("study.json has no other normalisation variants: only the main "
                     "variant's norm is shown.")
    if any(is_syncbn(study["variants"][n]["norm"]) for n in names):
        notes.append("*" + SYNCBN_NOTE)
    setup_theme(args)
    norms = ", ".join(str(study["variants"][n]["norm"]) for n in names)
    fig = variant_panels(df, study, names, args,
                         f"Normalisation: {norms}, random init vs ImageNet pre-training "
                         "(cf. paper Fig. 4)", panel_title, reference, None, sharey=True,
                         notes=notes)
    save_figure(fig, args.out_png, args.out_pdf, args.dpi)
    print(f"wrote {args.out_png} and {args.out_pdf} ({len(names)} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
