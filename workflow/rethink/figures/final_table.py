"""Table: final metrics per (schedule, init), in percent with one decimal.

Columns: bbox AP, AP50, AP75, APs, APm, APl and mask AP, AP50, AP75, taken at
each schedule's last iteration. Written as CSV, Markdown (pipe table) and
LaTeX (booktabs tabular). pycocotools' -1 ("no ground truth") is empty in the
CSV and "--" in Markdown/LaTeX.

    python -m rethink.figures.final_table --plan plan.json --metrics all_metrics.csv \
        --out-csv final_table.csv --out-md final_table.md --out-tex final_table.tex
"""

from __future__ import annotations

import math
import sys

import pandas as pd

from rethink.atomic import write_text
from rethink.figures.common import base_parser, init_label, run_cli
from rethink.results import (
    check_against_plan, final_metrics, load_plan, read_metrics_csv,
)

# (column in final_metrics, CSV name, Markdown header, LaTeX header)
COLUMNS = [
    ("bbox_AP", "bbox_AP", "box AP", r"AP$^\mathrm{bb}$"),
    ("bbox_AP50", "bbox_AP50", "box AP50", r"AP$^\mathrm{bb}_{50}$"),
    ("bbox_AP75", "bbox_AP75", "box AP75", r"AP$^\mathrm{bb}_{75}$"),
    ("bbox_APs", "bbox_APs", "box APs", r"AP$^\mathrm{bb}_{S}$"),
    ("bbox_APm", "bbox_APm", "box APm", r"AP$^\mathrm{bb}_{M}$"),
    ("bbox_APl", "bbox_APl", "box APl", r"AP$^\mathrm{bb}_{L}$"),
    ("segm_AP", "mask_AP", "mask AP", r"AP$^\mathrm{mk}$"),
    ("segm_AP50", "mask_AP50", "mask AP50", r"AP$^\mathrm{mk}_{50}$"),
    ("segm_AP75", "mask_AP75", "mask AP75", r"AP$^\mathrm{mk}_{75}$"),
]

_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$",
                "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))


def md_escape(text: str) -> str:
    return str(text).replace("|", r"\|")


def build_table(final: pd.DataFrame) -> pd.DataFrame:
    """Percent values (rounded to 1 decimal; NaN kept) in plan order."""
    out = pd.DataFrame({
        "schedule": final["schedule"],
        "init": final["init"],
        "iterations": final["iteration"].astype(int),
    })
    for src, name, _, _ in COLUMNS:
        out[name] = (100.0 * final[src].astype(float)).round(1)
    return out.reset_index(drop=True)


def _cell(v) -> str:
    return "--" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def to_markdown(table: pd.DataFrame) -> str:
    head = ["Schedule", "Init", "Iters"] + [c[2] for c in COLUMNS]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join([":---", ":---", "---:"] + ["---:"] * len(COLUMNS)) + "|"]
    for r in table.itertuples(index=False):
        r = r._asdict()
        cells = [md_escape(r["schedule"]), md_escape(init_label(r["init"])), str(r["iterations"])]
        cells += [_cell(r[c[1]]) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_latex(table: pd.DataFrame) -> str:
    nb = sum(c[0].startswith("bbox") for c in COLUMNS)
    nm = len(COLUMNS) - nb
    lines = [
        "% requires \\usepackage{booktabs}",
        "\\begin{tabular}{llr" + "r" * len(COLUMNS) + "}",
        "\\toprule",
        f" & & & \\multicolumn{{{nb}}}{{c}}{{bbox}} & \\multicolumn{{{nm}}}{{c}}{{mask}} \\\\",
        f"\\cmidrule(lr){{4-{3 + nb}}} \\cmidrule(lr){{{4 + nb}-{3 + nb + nm}}}",
        "Schedule & Init & Iters & " + " & ".join(c[3] for c in COLUMNS) + " \\\\",
        "\\midrule",
    ]
    prev = None
    for r in table.itertuples(index=False):
        r = r._asdict()
        if prev is not None and r["schedule"] != prev:
            lines.append("\\addlinespace")
        prev = r["schedule"]
        cells = [tex_escape(r["schedule"]), tex_escape(init_label(r["init"])), str(r["iterations"])]
        cells += [_cell(r[c[1]]) for c in COLUMNS]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = base_parser("python -m rethink.figures.final_table",
                    "Table of final metrics per (schedule, init) in percent.")
    p.add_argument("--out-csv", required=True, help="output CSV (percent, 1 decimal)")
    p.add_argument("--out-md", required=True, help="output Markdown pipe table")
    p.add_argument("--out-tex", required=True, help="output LaTeX booktabs tabular")
    args = p.parse_args(argv)
    plan = load_plan(args.plan)
    df = read_metrics_csv(args.metrics)
    check_against_plan(df, plan)
    table = build_table(final_metrics(df, plan))
    csv = table.to_csv(index=False, float_format="%.1f", lineterminator="\n")
    md, tex = to_markdown(table), to_latex(table)
    write_text(args.out_csv, csv)
    write_text(args.out_md, md)
    write_text(args.out_tex, tex)
    print(f"wrote {args.out_csv}, {args.out_md}, {args.out_tex} ({len(table)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
