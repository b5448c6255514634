"""The layout check rules' command line: ImageNet, COCO and keypoint folders checked."""
from __future__ import annotations

import argparse
import sys

from rethink.core.atomic import write_json
from rethink.data import imagenet
from rethink.data.keypoints import check_keypoints
from rethink.data.layout import CORRUPT_MODES, EXPECTED_COCO, VERIFY_MODES, DatasetError, check_coco

EXPECTED_LAYOUT = {"imagenet": imagenet.EXPECTED_LAYOUT, "coco": EXPECTED_COCO}

# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rethink.data.check",
        description="Check ImageNet / COCO-2017 folder layouts and annotations.",
    )
    ap.add_argument("--imagenet", metavar="DIR")
    ap.add_argument("--coco", metavar="DIR")
    ap.add_argument("--verify-images", choices=VERIFY_MODES, default="header")
    ap.add_argument("--corrupt-images", choices=CORRUPT_MODES, default="fail",
                    help="COCO images that do not decode: fail (default) or skip them with a "
                         "warning, listing them in the stats (data.corrupt_images)")
    ap.add_argument("--keypoints", metavar="ANN_DIR",
                    help="folder of person_keypoints_{train,val}2017.json to check")
    ap.add_argument("--images", metavar="COCO_ROOT",
                    help="with --keypoints: the folder holding {train,val}2017/ (default: --coco)")
    ap.add_argument("--num-keypoints", type=int, metavar="K",
                    help="with --keypoints: keypoints per category the config expects "
                         "(the number of OKS sigmas)")
    ap.add_argument("--out", required=True, metavar="STATS_JSON")
    ap.add_argument("--config-key", metavar="KEY",
                    help="config key quoted in errors: the one that named the folder "
                         "(e.g. data.coco); with --keypoints, the one of the OKS sigmas "
                         "(default keypoints.sigmas)")
    args = ap.parse_args(argv)
    if not args.imagenet and not args.coco and not args.keypoints:
        ap.error("give --imagenet, --coco and/or --keypoints")
    if args.keypoints and not (args.images or args.coco):
        ap.error("--keypoints needs --images COCO_ROOT (the folder holding train2017/, val2017/)")
    if args.keypoints and args.num_keypoints is None:
        ap.error("--keypoints needs --num-keypoints K")
    if args.coco and args.corrupt_images == "skip" and args.verify_images == "none":
        print("ConfigError: --corrupt-images skip (data.corrupt_images: skip) needs the images "
              "opened: set --verify-images (data.verify_images) to full or header, not none",
              file=sys.stderr)
        return 1
    result = {}
    checking = None
    try:
        if args.imagenet:
            checking = "imagenet"
            result["imagenet"] = imagenet.check_imagenet(args.imagenet)
        if args.coco:
            checking = "coco"
            result["coco"] = check_coco(args.coco, verify_images=args.verify_images,
                                        corrupt_images=args.corrupt_images)
        if args.keypoints:
            checking = "keypoints"
            result["keypoints"] = check_keypoints(args.keypoints, args.images or args.coco,
                                                  args.num_keypoints,
                                                  args.config_key or "keypoints.sigmas")
    except DatasetError as e:
        print(f"DatasetError: {e}", file=sys.stderr)
        if args.config_key and checking != "keypoints":  # that message names the sigmas' key
            layout = EXPECTED_LAYOUT[checking]
            print(f"Set config key {args.config_key} to a folder with this layout:\n{layout}",
                  file=sys.stderr)
        return 1
    write_json(args.out, result)
    n_skipped = sum(len(v) for v in result.get("coco", {}).get("skipped_images", {}).values())
    note = f" ({n_skipped} undecodable COCO images skipped)" if n_skipped else ""
    print(f"layout ok{note} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
