"""Checks of the config that a JSON schema cannot express, and the pieces of it that
each kind of job depends on (so that changing one key reruns only what it affects)."""
from __future__ import annotations

from .schedule import Plan, make_plan


class ConfigError(ValueError):
    pass


def check(config: dict) -> None:
    """Raise ConfigError naming the key when values are individually valid but inconsistent."""
    syn = config["data"]["synthetic"]
    if syn["detection_classes"] > syn["classes"]:
        raise ConfigError(f"data.synthetic.detection_classes ({syn['detection_classes']}) "
                          f"exceeds data.synthetic.classes ({syn['classes']})")
    if syn["det_min_size"] > syn["det_max_size"]:
        raise ConfigError(f"data.synthetic.det_min_size ({syn['det_min_size']}) exceeds "
                          f"det_max_size ({syn['det_max_size']})")
    data = config["data"]
    if data["corrupt_images"] == "skip" and data["verify_images"] == "none":
        raise ConfigError("data.corrupt_images: skip needs images opened by the layout check: "
                          "set data.verify_images to header or full")
    model = config["model"]
    if model["min_size"] > model["max_size"]:
        raise ConfigError(f"model.min_size ({model['min_size']}) exceeds model.max_size ({model['max_size']})")
    det = config["detection"]
    plan = detection_plan(config)
    shortest = min(s.iters for s in plan.schedules)
    if det["warmup_iters"] >= shortest:
        raise ConfigError(f"detection.warmup_iters ({det['warmup_iters']}) is not shorter than the "
                          f"shortest schedule ({shortest} iterations)")


def detection_plan(config: dict) -> Plan:
    det = config["detection"]
    try:
        return make_plan(det["one_x"], det["schedules"], det["checkpoint_every"])
    except ValueError as e:
        raise ConfigError(str(e)) from e


# Keys of `detection` that change the weights a training segment produces. The schedule
# list and checkpoint spacing only decide which segments exist, so adding a schedule
# keeps every checkpoint already trained.
TRAIN_KEYS = ("one_x", "batch_size", "base_lr", "reference_batch", "momentum", "weight_decay",
              "warmup_iters", "warmup_factor", "flip_prob", "seed", "bf16", "channels_last")

# Keys of `model` that only matter at inference time; the rest shape the weights.
EVAL_ONLY_MODEL_KEYS = ("score_thresh", "detections_per_img")


def train_settings(config: dict) -> dict:
    return {k: config["detection"][k] for k in TRAIN_KEYS}


def model_settings(config: dict, for_eval: bool) -> dict:
    """The model config as a job sees it; training jobs don't see inference-only keys."""
    return {k: v for k, v in config["model"].items() if for_eval or k not in EVAL_ONLY_MODEL_KEYS}
