"""Figure: ImageNet-style pre-training, val top-1 (and train loss) per epoch, one line per
pre-training the study ran (GN, and BN for the BN/SyncBN variants, and each variant's own).
Its shape says whether the backbone the pretrained branches start from had levelled off: the
last quarter of the epochs' gain in top-1 is printed on it. A self-supervised pre-training's
top-1 is its kNN classifier's on the frozen features (rethink.engine.methods), marked "kNN".

    python -m rethink.figures.pretrain_curve --metrics GN=pretrain/GN/metrics.json \
        [BN=pretrain/BN/metrics.json] --out-png pretrain_curve.png --out-pdf pretrain_curve.pdf
"""
from __future__ import annotations

import argparse
import json
import sys

from rethink.analysis.inputs import MetricsError
from rethink.analysis.stats import last_quarter_gain
from rethink.figures.common import add_figure_args, plt, run_cli, save_figure, setup_theme


def load(spec: str) -> tuple[str, list[dict]]:
    """(label, per-epoch curve) of NAME=metrics.json; a kNN-monitored run's label says so."""
    name, _, path = spec.partition("=")
    try:
        metrics = json.loads(open(path, encoding="utf-8").read())
        curve = metrics["curve"]
        if metrics.get("monitor", "val top-1") != "val top-1":
            name = f"{name} ({metrics['monitor'].split()[0]})"
    except (OSError, ValueError, KeyError) as e:
        raise MetricsError(f"{path}: no pre-training curve ({e})") from None
    if not curve:
        raise MetricsError(f"{path}: the pre-training curve is empty")
    return name, curve


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m rethink.figures.pretrain_curve",
                                description="Pre-training val top-1 and train loss per epoch.")
    p.add_argument("--metrics", nargs="+", required=True, help="NORM=pretrain metrics.json")
    add_figure_args(p)
    args = p.parse_args(argv)
    curves = [load(spec) for spec in args.metrics]
    setup_theme(args)
    fig, (top, loss) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, curve in curves:
        epochs = [c["epoch"] for c in curve]
        gain = last_quarter_gain(curve)
        top.plot(epochs, [100 * c["top1"] for c in curve], marker="o",
                 label=f"{name}: {100 * curve[-1]['top1']:.1f}% (last quarter {gain:+.1f})")
        loss.plot(epochs, [c["loss"] for c in curve], marker="o", label=name)
    top.set(xlabel="epoch", ylabel="val top-1 (%)", title="Pre-training: val top-1 (kNN: on frozen features)"
            if any("(kNN)" in name for name, _ in curves) else "Pre-training: val top-1")
    loss.set(xlabel="epoch", ylabel="train loss", title="Pre-training: train loss")
    top.legend(fontsize="small")
    loss.legend(fontsize="small")
    save_figure(fig, args.out_png, args.out_pdf, args.dpi)
    print(f"wrote {args.out_png} and {args.out_pdf} ({len(curves)} pre-trainings)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
