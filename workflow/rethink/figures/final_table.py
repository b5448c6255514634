"""Table: final metrics per (schedule, init) of the main variant, over seeds.

Columns: bbox AP, AP50, AP75, APs, APm, APl and mask AP, AP50, AP75, taken at
each schedule's last iteration, in percent. Each cell is the mean over seeds ±
the std (ddof=1); the Seeds column says how many ("n=1": no std). A cell whose
metric is missing for some seeds says its own n. Written as CSV (mean with one
decimal; ``<col>_std`` and ``<col>_ci95``, the 95% t-interval half width, with
two), Markdown (pipe table) and LaTeX (booktabs tabular). pycocotools' -1 ("no
ground truth") is empty in the CSV and "--" in Markdown/LaTeX.

    python -m rethink.figures.final_table --study study.json --metrics all_metrics.csv \
        --out-csv final_table.csv --out-md final_table.md --out-tex final_table.tex
"""

from __future__ import annotations

import math
import sys

import pandas as pd

from rethink.analysis.inputs import ordered_schedules
from rethink.analysis.results import variant_finals
from rethink.analysis.stats import aggregate_seeds
from rethink.core.atomic import write_text
from rethink.figures.common import LEVEL, base_parser, init_label, load_inputs, run_cli

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


def build_table(finals: pd.DataFrame, plan, columns=None) -> pd.DataFrame:
    """Mean/std/CI half width over seeds per (schedule, init), in percent, plan order.

    *finals* is :func:`rethink.analysis.results.variant_finals` (one row per seed).
    Columns: ``schedule, init, iterations, n_seeds`` then ``<name>``,
    ``<name>_std``, ``<name>_ci95`` and ``<name>_n`` per column of :data:`COLUMNS`
    (or of `columns`, as the keypoint task's table has).
    """
    columns = COLUMNS if columns is None else columns
    rows = []
    for s in ordered_schedules(plan):
        for init in plan["inits"]:
            sub = finals[(finals["schedule"] == s["name"]) & (finals["init"] == init)]
            rows.append({"schedule": s["name"], "init": init, "iterations": int(s["iters"]),
                         "n_seeds": int(sub["seed"].nunique())})
    out = pd.DataFrame(rows, columns=["schedule", "init", "iterations", "n_seeds"])
    for src, name, _, _ in columns:
        agg = aggregate_seeds(finals.rename(columns={src: "value"}), ["schedule", "init"],
                              level=LEVEL)
        agg = out[["schedule", "init"]].merge(agg, on=["schedule", "init"], how="left")
        out[name] = 100.0 * agg["mean"].to_numpy()
        out[f"{name}_std"] = 100.0 * agg["std"].to_numpy()
        out[f"{name}_ci95"] = 100.0 * (agg["hi"] - agg["mean"]).to_numpy()
        out[f"{name}_n"] = agg["n"].fillna(0).astype(int).to_numpy()
    return out.reset_index(drop=True)


def to_csv(table: pd.DataFrame, columns=None) -> str:
    """Mean rounded to one decimal (as printed), std and CI half width to two."""
    out = table[["schedule", "init", "iterations", "n_seeds"]].copy()
    for _, name, _, _ in COLUMNS if columns is None else columns:
        out[name] = table[name].round(1)
        out[f"{name}_std"] = table[f"{name}_std"].round(2)
        out[f"{name}_ci95"] = table[f"{name}_ci95"].round(2)
    return out.to_csv(index=False, lineterminator="\n")


def _isnan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _cell(r: dict, name: str, pm: str = "±") -> str:
    """Mean ± std; just the mean when std is undefined (n=1); "(n=k)" when this
    metric has fewer seeds than the row (pycocotools' -1 in some)."""
    m, sd, n = r[name], r[f"{name}_std"], r[f"{name}_n"]
    if _isnan(m):
        return "--"
    text = f"{m:.1f}" if _isnan(sd) else f"{m:.1f} {pm} {sd:.1f}"
    if n != r["n_seeds"]:
        text += f" (n={n})"
    return text


def to_markdown(table: pd.DataFrame, columns=None) -> str:
    columns = COLUMNS if columns is None else columns
    head = ["Schedule", "Init", "Iters", "Seeds"] + [c[2] for c in columns]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join([":---", ":---", "---:", "---:"] + ["---:"] * len(columns)) + "|"]
    for r in table.itertuples(index=False):
        r = r._asdict()
        cells = [md_escape(r["schedule"]), md_escape(init_label(r["init"])),
                 str(r["iterations"]), f"n={r['n_seeds']}"]
        cells += [_cell(r, c[1]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_latex(table: pd.DataFrame) -> str:
    nb = sum(c[0].startswith("bbox") for c in COLUMNS)
    nm = len(COLUMNS) - nb
    lines = [
        "% requires \\usepackage{booktabs}; cells: mean $\\pm$ std over seeds",
        "\\begin{tabular}{llrr" + "r" * len(COLUMNS) + "}",
        "\\toprule",
        f" & & & & \\multicolumn{{{nb}}}{{c}}{{bbox}} & \\multicolumn{{{nm}}}{{c}}{{mask}} \\\\",
        f"\\cmidrule(lr){{5-{4 + nb}}} \\cmidrule(lr){{{5 + nb}-{4 + nb + nm}}}",
        "Schedule & Init & Iters & $n$ & " + " & ".join(c[3] for c in COLUMNS) + " \\\\",
        "\\midrule",
    ]
    prev = None
    for r in table.itertuples(index=False):
        r = r._asdict()
        if prev is not None and r["schedule"] != prev:
            lines.append("\\addlinespace")
        prev = r["schedule"]
        cells = [tex_escape(r["schedule"]), tex_escape(init_label(r["init"])),
                 str(r["iterations"]), str(r["n_seeds"])]
        cells += [_cell(r, c[1], "$\\pm$") for c in COLUMNS]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = base_parser("python -m rethink.figures.final_table",
                    "Table of final metrics per (schedule, init) in percent: "
                    "mean +- std over seeds.")
    p.add_argument("--out-csv", required=True,
                   help="output CSV (percent: mean, _std, _ci95 per metric)")
    p.add_argument("--out-md", required=True, help="output Markdown pipe table")
    p.add_argument("--out-tex", required=True, help="output LaTeX booktabs tabular")
    args = p.parse_args(argv)
    study, df = load_inputs(args)
    main_v = study["main"]
    plan = study["variants"][main_v]
    table = build_table(variant_finals(df, study, main_v, str(args.metrics)), plan)
    csv, md, tex = to_csv(table), to_markdown(table), to_latex(table)
    write_text(args.out_csv, csv)
    write_text(args.out_md, md)
    write_text(args.out_tex, tex)
    print(f"wrote {args.out_csv}, {args.out_md}, {args.out_tex} ({len(table)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
