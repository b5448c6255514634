"""Input conventions: the channel order, value range, pixel mean and std a backbone was
trained with, known from its file's format before anything is read (torch-free; the
Snakefile imports it), and the checks that a model normalises its input the same way."""
from __future__ import annotations

from pathlib import Path

# Input conventions. Ours: what rethink.engine.pretrain normalises with (torchvision's ImageNet
# mean and std on RGB in [0, 1]); torchvision and timm ResNets were trained the same way.
IMAGENET_RGB = {"channels": "RGB", "range": 1, "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225]}
# Detectron (Caffe2): BGR in 0-255, mean subtracted, no std (its PIXEL_MEANS).
DETECTRON_BGR = {"channels": "BGR", "range": 255, "mean": [102.9801, 115.9465, 122.7717],
                 "std": [1.0, 1.0, 1.0]}


class BackboneError(ValueError):
    """A backbone file that cannot be used as configured; the message names the file."""


def check_input(conv: dict, where: str) -> dict:
    """`conv` as input conventions, or BackboneError naming `where` and what is wrong."""
    problems = []
    if not isinstance(conv, dict) or set(conv) != {"channels", "range", "mean", "std"}:
        raise BackboneError(f"{where}: input conventions need exactly channels, range, mean, std; "
                            f"got {conv!r}")
    if conv["channels"] not in ("RGB", "BGR"):
        problems.append(f"channels must be RGB or BGR, not {conv['channels']!r}")
    if conv["range"] not in (1, 255):
        problems.append(f"range must be 1 (pixels in [0, 1]) or 255, not {conv['range']!r}")
    for key in ("mean", "std"):
        v = conv[key]
        if not (isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)):
            problems.append(f"{key} must be 3 numbers, not {v!r}")
    if not problems and min(conv["std"]) <= 0:
        problems.append(f"std must be positive, not {conv['std']}")
    if problems:
        raise BackboneError(f"{where}: " + "; ".join(problems))
    return {"channels": conv["channels"], "range": conv["range"],
            "mean": [float(x) for x in conv["mean"]], "std": [float(x) for x in conv["std"]]}


def sniff(path: str | Path) -> str:
    """The container a backbone file is in, from its first bytes: zip (torch.save),
    safetensors or pickle; BackboneError for anything else."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as e:
        raise BackboneError(f"pretrain.checkpoint {path}: cannot read it: {e}") from e
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if len(head) > 8 and int.from_bytes(head[:8], "little") < 100_000_000 and head[8:9] == b"{":
        return "safetensors"
    if head[:1] == b"\x80" or head[:1] in (b"(", b"}"):  # pickle protocol 2+, or 0/1
        return "pickle"
    raise BackboneError(f"pretrain.checkpoint {path}: not a backbone format this pipeline reads "
                        f"(a torch.save .pt/.pth, a .safetensors or a Detectron .pkl); "
                        f"it starts with {head[:8]!r}")


def declared_input(path: str | Path, override: dict | None) -> dict:
    """The input conventions of backbone `path`: `override` (pretrain.input) if given, else its
    format's. Reads only the file's first bytes, so the workflow can call it at DAG time."""
    if override is not None:
        return check_input(override, "pretrain.input")
    if sniff(path) == "pickle":
        return dict(DETECTRON_BGR)
    return dict(IMAGENET_RGB)


def model_input(model_cfg: dict) -> dict:
    """The input conventions a model config normalises with (model.input; ours if absent)."""
    return model_cfg.get("input", IMAGENET_RGB)


def check_conventions(meta: dict, model_cfg: dict, what: str) -> None:
    """Stop when a backbone or checkpoint was trained on input normalised otherwise than this
    job's model would (files from before conventions were recorded used ImageNet RGB)."""
    theirs, ours = meta.get("input", IMAGENET_RGB), model_input(model_cfg)
    if theirs != ours:
        raise SystemExit(f"{what} was trained on input {theirs}, but this job's model normalises "
                         f"as {ours} (model.input, from pretrain.checkpoint's format or "
                         f"pretrain.input): conflicting input conventions")
