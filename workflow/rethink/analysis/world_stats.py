"""How this study's data relate to each other, next to the paper's ImageNet and COCO: the
statistics that decide whether a miniature stands to its pre-training as COCO stands to
ImageNet (sizes, density, epochs, pre-training over fine-tuning, parameters per instance).

    python -m rethink.analysis.world_stats --compute compute_seen.json --coco-layout coco_layout.json \
        [--imagenet-layout imagenet_layout.json] --model MODEL_JSON \
        --out-csv world_stats.csv --out-md world_stats.md

Everything of this study is counted from the run's own files: `rethink.analysis.compute`'s JSON
(train images, instances and pixels per epoch of the main variant, what pre-training saw,
the main variant's schedules), the layout checks (categories, pre-training classes and
their names) and the detector built from the model config (its parameter count). The
paper's column is ImageNet-1k and COCO train2017 with the paper's R50-FPN Mask R-CNN
(`PAPER`, with where each number comes from). A given backbone checkpoint (no pre-training
run) leaves the pre-training rows unknown.
"""
from __future__ import annotations

import argparse
import json
import sys

from rethink.analysis.compute import to_csv
from rethink.core.atomic import write_text

# The paper's data, each with its source: ImageNet-1k train (ILSVRC-2012), 90 epochs of
# 224 px crops (the standard ResNet recipe the paper's backbones used); COCO train2017 and
# its instance annotations; the paper's 1x = 90k iterations at batch 16; torchvision's
# maskrcnn_resnet50_fpn (R50-FPN Mask R-CNN) parameters; images resized to 800 px short
# side (COCO's typical 640x480 -> 1067x800).
PAPER = {
    "pretrain_images": 1_281_167,
    "pretrain_classes": 1000,
    "pretrain_epochs": 90,
    "pretrain_pixels_per_image": 224 * 224,
    "train_images": 118_287,
    "categories": 80,
    "instances": 860_001,
    "pixels_per_image": 1067 * 800,
    "one_x_images": 90_000 * 16,
    "longest_multiple": 6,
    "parameters": 44_401_393,
    "shared_categories": "'person', COCO's largest category, is no ImageNet class",
    "categories_per_image": 3.5,  # COCO 2014 train (Lin et al. 2014, Sec. 5); 7.7 instances per image there
    # cocodataset.org/#detection-eval: "approximately 41% of objects are small, 34% medium, 24% large"
    "size_shares": {"small": 0.41, "medium": 0.34, "large": 0.24},
}
COLUMNS = ("statistic", "paper", "this_study", "note")


def _fmt(v) -> str:
    if v is None:
        return "unknown"
    if isinstance(v, str):
        return v
    if isinstance(v, int) or float(v).is_integer() and abs(v) >= 1000:
        return f"{int(round(v)):,}"
    return f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"


def paper_rows() -> dict:
    p = PAPER
    seen = p["pretrain_images"] * p["pretrain_epochs"]
    longest = p["one_x_images"] * p["longest_multiple"]
    return {
        "pretrain_images": p["pretrain_images"], "pretrain_classes": p["pretrain_classes"],
        "pretrain_images_seen": seen, "pretrain_pixels_per_image": p["pretrain_pixels_per_image"],
        "train_images": p["train_images"], "categories": p["categories"],
        "instances_per_image": p["instances"] / p["train_images"],
        "instances_per_category": p["instances"] / p["categories"],
        "pixels_per_image": p["pixels_per_image"],
        "epochs_1x": p["one_x_images"] / p["train_images"],
        "epochs_longest": longest / p["train_images"], "longest": f"{p['longest_multiple']}x",
        "pretrain_over_longest_images": seen / longest,
        "pretrain_over_longest_pixels": seen * p["pretrain_pixels_per_image"]
        / (longest * p["pixels_per_image"]),
        "parameters": p["parameters"], "parameters_per_instance": p["parameters"] / p["instances"],
        "shared_categories": p["shared_categories"],
        "categories_per_image": p["categories_per_image"], "size_shares": _shares(p["size_shares"]),
    }


def _shares(shares: dict | None) -> str | None:
    """small / medium / large shares as one cell: '41% / 34% / 24%'."""
    if not shares:
        return None
    return " / ".join(f"{100 * shares[k]:.0f}%" for k in ("small", "medium", "large"))


def study_rows(compute: dict, coco_layout: dict, imagenet_layout: dict | None, parameters: int) -> dict:
    main = compute["main"]
    v = compute["variants"][main]
    n, instances = v["train_images"], v["instances_per_epoch"]
    rows = [r for r in compute["rows"] if r["variant"] == main]
    one_x = next((r for r in rows if r.get("multiple") == 1), None)
    longest = max(rows, key=lambda r: r["iterations"])
    coco = coco_layout.get("coco", coco_layout)
    categories = coco["train"]["categories"]
    pre = compute.get("pretrain") or {}
    inet = (imagenet_layout or {}).get("imagenet", imagenet_layout or {})
    seen, pre_pixels = pre.get("images_seen"), pre.get("pixels_seen")
    shared = None
    if inet.get("class_names") and coco.get("category_names"):
        names = set(inet["class_names"])
        both = [c for c in coco["category_names"] if c in names]
        shared = f"{len(both)} of {len(coco['category_names'])} (by name)"
    longest_pixels = longest["finetune_pixels"]
    return {
        "pretrain_images": pre.get("train_images"), "pretrain_classes": inet.get("classes"),
        "pretrain_images_seen": seen,
        "pretrain_pixels_per_image": None if not seen or pre_pixels is None else pre_pixels / seen,
        "train_images": n, "categories": categories,
        "instances_per_image": instances / n, "instances_per_category": instances / categories,
        "pixels_per_image": v["pixels_per_epoch"] / n,
        "epochs_1x": None if one_x is None else one_x["epochs"],
        "epochs_longest": longest["epochs"], "longest": longest["schedule"],
        "pretrain_over_longest_images": None if seen is None else seen / longest["finetune_images"],
        "pretrain_over_longest_pixels": None if pre_pixels is None else pre_pixels / longest_pixels,
        "parameters": parameters, "parameters_per_instance": parameters / instances,
        "shared_categories": shared,
        "categories_per_image": coco["train"].get("categories_per_image"),
        "size_shares": _shares(coco["train"].get("size_shares")),
    }


LABELS = (
    ("pretrain_images", "pre-training images (train set)", ""),
    ("pretrain_classes", "pre-training classes", ""),
    ("pretrain_images_seen", "pre-training images seen", "train set x epochs"),
    ("pretrain_pixels_per_image", "pre-training pixels per image", "crop side squared"),
    ("train_images", "detection train images", "main variant"),
    ("categories", "detection categories", ""),
    ("shared_categories", "detection categories that are pre-training classes", ""),
    ("instances_per_image", "instances per train image", "non-crowd boxes training uses"),
    ("instances_per_category", "instances per category (train)", ""),
    ("categories_per_image", "categories per train image", "paper: COCO 2014 train"),
    ("size_shares", "small / medium / large instances (train)",
     "COCO's area classes relative to image area (rethink.core.names.SIZE_CLASSES)"),
    ("pixels_per_image", "pixels per detection image", "after the detector's resize"),
    ("epochs_1x", "1x, epochs of the train set", ""),
    ("longest", "longest schedule", ""),
    ("epochs_longest", "longest schedule, epochs of the train set", ""),
    ("pretrain_over_longest_images", "pre-training / longest schedule, images", ""),
    ("pretrain_over_longest_pixels", "pre-training / longest schedule, pixels", ""),
    ("parameters", "detector parameters", "Mask R-CNN as configured"),
    ("parameters_per_instance", "parameters per training instance", "parameters / instances per epoch"),
)


def table(paper: dict, study: dict) -> list[dict]:
    return [{"statistic": label, "paper": paper[key], "this_study": study[key], "note": note}
            for key, label, note in LABELS]


def to_markdown(rows: list[dict]) -> str:
    md = ["| statistic | paper (ImageNet-1k, COCO train2017, R50-FPN) | this study | note |",
          "|---|---:|---:|---|"]
    md += [f"| {r['statistic']} | {_fmt(r['paper'])} | {_fmt(r['this_study'])} | {r['note']} |"
           for r in rows]
    return "\n".join(md) + "\n"


def count_parameters(model_cfg: dict, num_classes: int) -> int:
    from rethink.models.detector import build_mask_rcnn  # torch: only here

    return sum(p.numel() for p in build_mask_rcnn(model_cfg, num_classes).parameters())


def _read(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: cannot read the {what} {path}: {e}") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rethink.analysis.world_stats", description=__doc__.split("\n\n")[0])
    ap.add_argument("--compute", required=True, help="rethink.analysis.compute's JSON (compute_seen.json)")
    ap.add_argument("--coco-layout", required=True, help="the COCO layout check's JSON")
    ap.add_argument("--imagenet-layout", help="the ImageNet layout check's JSON (absent: a given backbone)")
    ap.add_argument("--model", required=True, help="the detector's model config as JSON")
    ap.add_argument("--out-csv", required=True)
    ap.add_argument("--out-md", required=True)
    args = ap.parse_args(argv)
    compute = _read(args.compute, "compute JSON")
    coco = _read(args.coco_layout, "COCO layout stats")
    imagenet = _read(args.imagenet_layout, "ImageNet layout stats") if args.imagenet_layout else None
    try:
        model_cfg = json.loads(args.model)
        categories = coco.get("coco", coco)["train"]["categories"]
        rows = table(paper_rows(), study_rows(compute, coco, imagenet, count_parameters(model_cfg, categories)))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, StopIteration) as e:
        print(f"error: {args.compute} / {args.coco_layout}: missing or bad field ({type(e).__name__}: {e})",
              file=sys.stderr)
        return 2
    md = to_markdown(rows)
    write_text(args.out_csv, to_csv(rows, COLUMNS))
    write_text(args.out_md, md)
    print(md, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
