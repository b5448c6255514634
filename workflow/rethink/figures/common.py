"""Shared pieces of the figure/table command lines.

* :func:`base_parser` -- argparse with ``--plan`` and ``--metrics``;
  :func:`add_figure_args` adds ``--out-png --out-pdf --dpi --style --context
  --palette``.
* :func:`setup_theme` -- seaborn theme on the Agg backend.
* :func:`init_colors` / :func:`schedule_styles` -- consistent encodings.
* :func:`save_figure` -- atomic PNG + PDF save.
* :func:`run_cli` -- turns known input errors into ``error: ...`` + exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot/seaborn import

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from rethink.atomic import atomic_write  # noqa: E402
from rethink.results import MetricsError  # noqa: E402

INIT_LABELS = {"scratch": "random init (scratch)", "pretrained": "ImageNet pre-trained"}
TASK_LABELS = {"bbox": "bbox AP", "segm": "mask AP"}
LINESTYLES = ["--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1))]


def init_label(init: str) -> str:
    return INIT_LABELS.get(init, init)


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--plan", required=True, help="plan.json written by the planning step")
    p.add_argument("--metrics", required=True,
                   help="tidy metrics CSV written by `python -m rethink.results`")
    return p


def add_figure_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--out-png", required=True, help="output PNG path")
    p.add_argument("--out-pdf", required=True, help="output PDF path")
    p.add_argument("--dpi", type=int, default=150, help="PNG resolution (default 150)")
    p.add_argument("--style", default="whitegrid",
                   help="seaborn style: white, whitegrid, dark, darkgrid, ticks")
    p.add_argument("--context", default="notebook",
                   help="seaborn context: paper, notebook, talk, poster")
    p.add_argument("--palette", default="colorblind",
                   help="seaborn/matplotlib palette name for the inits")
    return p


def setup_theme(args: argparse.Namespace) -> None:
    if args.dpi <= 0:
        raise MetricsError(f"--dpi must be positive, got {args.dpi}")
    if args.style not in ("white", "whitegrid", "dark", "darkgrid", "ticks"):
        raise MetricsError(f"unknown --style {args.style!r}")
    if args.context not in ("paper", "notebook", "talk", "poster"):
        raise MetricsError(f"unknown --context {args.context!r}")
    try:
        sns.color_palette(args.palette)
    except (ValueError, KeyError) as e:
        raise MetricsError(f"unknown --palette {args.palette!r} ({e})") from None
    sns.set_theme(style=args.style, context=args.context, palette=args.palette)
    plt.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42,
                         "savefig.bbox": "tight"})


def init_colors(inits: Sequence[str], palette: str) -> dict:
    cols = sns.color_palette(palette, max(len(inits), 2))
    return {init: cols[i] for i, init in enumerate(inits)}


def schedule_styles(schedules: Sequence[Mapping]) -> dict:
    """name -> (linestyle, alpha); longer schedules more opaque."""
    n = len(schedules)
    out = {}
    for i, s in enumerate(schedules):
        alpha = 1.0 if n == 1 else 0.45 + 0.55 * i / (n - 1)
        out[s["name"]] = (LINESTYLES[i % len(LINESTYLES)], alpha)
    return out


def save_figure(fig, out_png: str | os.PathLike, out_pdf: str | os.PathLike, dpi: int) -> None:
    """Save *fig* as PNG and PDF; each goes to a temp file then os.replace."""
    atomic_write(out_png, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    atomic_write(out_pdf, lambda tmp: fig.savefig(tmp, format="pdf"))
    plt.close(fig)


def run_cli(main: Callable[[Sequence[str] | None], int],
            argv: Sequence[str] | None = None) -> int:
    """Run *main*, reporting input errors as one clean line (exit status 2)."""
    try:
        return main(argv) or 0
    except MetricsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:  # unreadable/unwritable paths, bad values
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


def fmt_pct(v: float) -> str:
    """AP fraction -> percent string with one decimal; '--' for NaN."""
    import math
    return "--" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


__all__ = [
    "INIT_LABELS", "TASK_LABELS", "base_parser", "add_figure_args", "setup_theme",
    "init_colors", "schedule_styles", "save_figure", "run_cli", "init_label",
    "fmt_pct",
]
