"""Checks of the config that a JSON schema cannot express, the study's variants, and the
pieces of the config that each kind of job depends on (so that changing one key reruns
only what it affects)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

from rethink.core import synthetic
from rethink.core.errors import ConfigError
from rethink.core.kinds import DATASETS, KINDS
from rethink.core.schedule import Plan, make_plan

MAIN = "main"
VARIANT_NAME = re.compile(r"^[A-Za-z0-9_.]+$")  # the {variant} wildcard's pattern
# detection keys a norm or regime variant may override (the paper re-tuned LR and scale
# augmentation for its small-data regimes); they apply to both inits alike.
OVERRIDE_KEYS = ("one_x", "schedules", "checkpoint_every", "base_lr", "weight_decay",
                 "warmup_iters", "scales", "lr_decay")
LR_DECAY = 0.1  # detection.lr_decay's default: the paper's x0.1 at each LR drop
# pre-training keys a pretraining variant may override (its pre-training strength); its
# detection runs keep main's settings and may only run fewer of main's schedules
PRETRAIN_OVERRIDE_KEYS = ("method", "optimizer", "epochs", "lr", "warmup_epochs", "weight_decay",
                          "label_smoothing", "crop_scale", "lr_schedule", "lr_steps", "seed")
# pre-training keys whose default is left out of a pre-training's settings, so that the jobs of
# studies from before the key keep their settings (rerun triggers, lineage)
PRETRAIN_DEFAULTS = {"method": "supervised", "optimizer": "sgd"}
# model keys a model variant may override: the backbone (deeper or wider, the paper's R101;
# or another architecture and normalisation, its VGG-16 without any); the rest (FPN, heads,
# input size) stays main's, so only the backbone (and with `norm`, every norm) differs
MODEL_OVERRIDE_KEYS = ("arch", "depth", "width", "norm")
# kinds whose entries may set those keys (Kind.own_backbone): a model variant must (it is the
# backbone axis); a task or dataset variant may, as the paper ran its VOC study on an R101.
# Either then starts its pretrained branch from a pre-training of its own backbone
# (pretrain/NORM_NAME)
# the depths each model.arch builds (rethink.models.detector.ARCH_DEPTHS; kept here so the workflow
# checks a config without importing torch)
ARCH_DEPTHS = {"resnet": (10, 18, 34, 50, 101), "vgg": (11, 16), "vit": tuple(range(1, 33))}
# evaluation-only keys any variant (but a pretraining one, scored as main) may set: scored
# with test-time augmentation too (evaluate.tta's shape); never a training key
EVAL_OVERRIDE_KEYS = ("tta",)


@dataclass(frozen=True)
class Variant:
    """One experiment of the study: a normalisation, a train-set fraction, a pre-training
    strength, another backbone, another task, another dataset, or another training recipe."""
    name: str
    kind: str          # a key of rethink.core.kinds.KINDS
    norm: str
    fraction: float    # of the detection train set (1.0 = all of it)
    detection: dict    # config["detection"] with the variant's overrides applied
    plan: Plan
    pretrain: dict | None = None  # pretraining variants (and variants with a backbone of their own): pretrain.* overrides
    model: dict | None = None     # model variants (and task or dataset ones that set any): model.* overrides (arch, depth, width, norm)
    task: str | None = None       # task variants: the task their model adds (keypoints)
    dataset: str | None = None    # dataset variants: the dataset they train on (voc)
    tta: dict | None = None       # scored with test-time augmentation too ({scales, flip})
    shares_pretraining_of: str | None = None  # an earlier variant whose own pre-training is this one's
                                  # to the key (same backbone, norm and pretrain overrides): trained once
    base: str = MAIN              # pretraining variants: whose runs they repeat from another pre-training
                                  # (main, or a model variant); their scratch runs are the base's

    @property
    def own_pretraining(self) -> bool:
        """Whether its pretrained branch starts from a pre-training of its own (pretrain/NORM_NAME):
        another pre-training strength, or another backbone."""
        return self.pretrain is not None or self.model is not None

    @property
    def shares_scratch(self) -> bool:
        """A pretraining variant's scratch runs are its base's (main's, or a model variant's): the
        same settings, and scratch reads no backbone, so they are not trained again but shared
        (rethink.analysis.shared_runs)."""
        return KINDS[self.kind].shares_scratch


def json_arg(text: str, name: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise SystemExit(f"--{name}: not valid JSON ({e})")
    if not isinstance(value, dict):
        raise SystemExit(f"--{name}: expected a JSON object")
    return value


def check(config: dict) -> None:
    """Raise ConfigError naming the key when values are individually valid but inconsistent."""
    try:  # the world's own validation, the one its generator applies
        synthetic.validate_config(config["data"]["synthetic"])
    except ConfigError as e:  # named as the study's config names it
        raise ConfigError(str(e).replace("synth config: ", "data.synthetic.", 1)) from None
    data = config["data"]
    if data["corrupt_images"] == "skip" and data["verify_images"] == "none":
        raise ConfigError("data.corrupt_images: skip needs images opened by the layout check: "
                          "set data.verify_images to header or full")
    if config["pretrain"]["input"] is not None and not config["pretrain"]["checkpoint"]:
        raise ConfigError("pretrain.input describes the input conventions of pretrain.checkpoint, "
                          "which is not set (this pipeline's own pre-training uses ImageNet RGB)")
    pre = config["pretrain"]
    if pre["lr_schedule"] == "step" and not pre["lr_steps"]:
        raise ConfigError("pretrain.lr_schedule: step needs pretrain.lr_steps (epochs, e.g. [30, 60, 80])")
    if pre["crop_scale"][0] > pre["crop_scale"][1]:
        raise ConfigError(f"pretrain.crop_scale: {pre['crop_scale']} is not [low, high]")
    model = config["model"]
    if model["min_size"] > model["max_size"]:
        raise ConfigError(f"model.min_size ({model['min_size']}) exceeds model.max_size ({model['max_size']})")
    if config["pretrain"]["checkpoint"] and model.get("arch", "resnet") not in ("resnet", "vit"):
        raise ConfigError(f"pretrain.checkpoint: given backbones are ResNets or ViTs (rethink.models.backbones), "
                          f"but model.arch is {model['arch']}")
    for v in variants(config).values():
        where = "detection" if v.kind == MAIN else f"study.{v.kind}s[{v.name}]"
        shape = model_settings(config, False, variant=v)
        arch, prefix = shape.get("arch", "resnet"), "model" if v.kind == MAIN else where
        if shape["depth"] not in ARCH_DEPTHS[arch]:
            raise ConfigError(f"{prefix}.depth: {shape['depth']} is no depth of arch {arch} "
                              f"(one of {list(ARCH_DEPTHS[arch])})")
        vit = model.get("vit") or {}
        if arch == "vit" and not vit:
            raise ConfigError(f"{prefix}.arch: vit needs model.vit (patch_size, heads, mlp_ratio, pos_size)")
        if arch == "vit" and shape["width"] % vit["heads"]:
            raise ConfigError(f"{prefix}.width: {shape['width']} is no multiple of model.vit.heads ({vit['heads']})")
        if arch == "vit" and vit["pos_size"] % vit["patch_size"]:
            raise ConfigError(f"model.vit.pos_size: {vit['pos_size']} is no multiple of model.vit.patch_size "
                              f"({vit['patch_size']})")
        method = {**config["pretrain"], **(v.pretrain or {})}["method"]
        if method == "mae" and arch != "vit" and (v.kind == MAIN or v.own_pretraining):
            key = "pretrain.method" if v.kind == MAIN or "method" not in (v.pretrain or {}) else (
                f"{where}.method" if v.kind == "pretraining" else f"{where}.pretrain.method")
            raise ConfigError(f"{key}: mae (masked autoencoding) pre-trains a ViT, but this backbone's "
                              f"arch is {arch} (simsiam pre-trains any backbone)")
        if shape["norm"] == "none" and arch != "vgg":
            raise ConfigError(f"{prefix}.norm: none needs arch: vgg (a ResNet here always normalises)")
        # every schedule must train at full LR before its first drop (the paper warms up 500
        # or 1k of 90k iterations; a warm-up that reaches the 1x's drop never trains at full LR)
        first = min(v.plan.schedules, key=lambda s: s.drops[0])
        if v.detection["warmup_iters"] >= first.drops[0]:
            raise ConfigError(f"{where}: warmup_iters ({v.detection['warmup_iters']}) does not end before "
                              f"schedule {first.name}'s first LR drop (iteration {first.drops[0]}): it "
                              f"would never train at full LR; use fewer than {first.drops[0]} iterations")
        for scale in v.detection["scales"] or []:
            if scale > model["max_size"]:
                raise ConfigError(f"{where}.scales: {scale} exceeds model.max_size ({model['max_size']})")


def _plan(det: dict, where: str) -> Plan:
    try:
        return make_plan(det["one_x"], det["schedules"], det["checkpoint_every"])
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from e


def variants(config: dict) -> dict[str, Variant]:
    """The study's variants in display order: main, then norms, regimes by size, pretrainings,
    models, tasks, datasets and recipes."""
    det = config["detection"]
    main_norm = config["model"]["norm"]
    main_tta = config["evaluate"].get("tta")
    out = {MAIN: Variant(MAIN, "main", main_norm, 1.0, dict(det), _plan(det, "detection"), tta=main_tta)}
    entries = [(k.name, dict(e)) for k in KINDS.values() if k.section for e in entries_run(config, k)]
    later = []
    for kind, overrides in entries:
        k = KINDS[kind]
        name = overrides.pop("name", None) or overrides[k.keys[0]]  # a norm entry is named by its norm
        where = f"study.{kind}s[{name}]"
        if not VARIANT_NAME.match(name) or name == MAIN or name in out:
            raise ConfigError(f"{where}: variant names must be unique, not {MAIN!r}, and use "
                              f"letters, digits, '_' or '.'")
        if k.shares_scratch:  # its base's scratch runs: only its pre-training may differ
            later.append((name, overrides, where))  # a base may be a model variant, built below
            out[name] = None  # its place in the display order
            continue
        # the kind's own keys (Kind.keys): what it varies, kept on the Variant under their names
        varied = {key: overrides.pop(key) for key in k.keys if key in overrides}
        if k.choices and varied.get(k.keys[0]) not in k.choices:
            raise ConfigError(f"{where}.{k.keys[0]}: must be one of {list(k.choices)}, got {varied.get(k.keys[0])!r}")
        if varied.get("norm") == main_norm:
            raise ConfigError(f"{where}: {main_norm} is model.norm already (the main variant)")
        tta = overrides.pop("tta", main_tta)
        if tta and not k.tta:
            raise ConfigError(f"{where}: test-time augmentation (tta, evaluate.tta) is not supported "
                              f"for {kind} variants; set tta: null here")
        if k.must_set == "training" and not overrides:
            raise ConfigError(f"{where}: sets no training key ({', '.join(OVERRIDE_KEYS)}), so it "
                              f"would repeat the main variant")
        model, pretrain, norm = None, None, varied.get("norm", main_norm)
        if k.own_backbone:
            pretrain = overrides.pop("pretrain", None)
            bad = sorted(set(pretrain or {}) - set(PRETRAIN_OVERRIDE_KEYS))
            if bad:
                raise ConfigError(f"{where}.pretrain: unknown key(s) {bad}; allowed: {list(PRETRAIN_OVERRIDE_KEYS)}")
            model = {key: overrides.pop(key) for key in MODEL_OVERRIDE_KEYS if key in overrides}
            same = {key: v for key, v in model.items() if config["model"].get(key, "resnet" if key == "arch" else None) == v}
            if k.must_set == "model" and (not model or len(same) == len(model)):
                raise ConfigError(f"{where}: sets no model key ({', '.join(MODEL_OVERRIDE_KEYS)}) other "
                                  f"than model.*'s, so it would repeat the main variant")
            if k.must_set != "model" and pretrain and not model:
                raise ConfigError(f"{where}.pretrain: only with a backbone of its own ({', '.join(MODEL_OVERRIDE_KEYS)}); "
                                  f"another pre-training of main's backbone is a study.pretrainings entry")
            if k.must_set != "model" and model and config["pretrain"]["checkpoint"] and "pretrained" in config["detection"]["inits"]:
                raise ConfigError(f"{where}: sets {sorted(model)}, a backbone of its own, which needs a pre-training "
                                  f"of its own; pretrain.checkpoint is main's backbone. Drop one of them")
            if k.must_set != "model":  # a key at main's value keeps main's backbone (and its pre-training)
                model = {key: v for key, v in model.items() if key not in same}
            model = model or None
            norm = (model or {}).get("norm", main_norm)
        unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
        if unknown:
            allowed = list(OVERRIDE_KEYS) + (list(MODEL_OVERRIDE_KEYS) + ["pretrain"] if k.own_backbone else [])
            allowed += [key for key in k.keys if key != "norm"] + list(EVAL_OVERRIDE_KEYS)
            raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {allowed}")
        merged = {**det, **overrides}
        out[name] = Variant(name, kind, norm, float(varied.get("fraction", 1.0)), merged, _plan(merged, where),
                            pretrain=dict(pretrain) if pretrain else None, model=model, task=varied.get("task"),
                            dataset=varied.get("dataset"), tta=dict(tta) if tta else None)
    for name, overrides, where in later:
        base = overrides.pop("base", MAIN)
        if out.get(base) is None or out[base].kind not in ("main", "model"):
            models = [n for n, v in out.items() if v is not None and v.kind == "model"]
            raise ConfigError(f"{where}.base: {base!r} is neither {MAIN!r} nor a study.models entry "
                              f"(those here: {models})")
        out[name] = _pretraining_variant(name, overrides, out[base], where)
    return _share_pretrainings(config, out)


def _share_pretrainings(config: dict, variants: dict[str, Variant]) -> dict[str, Variant]:
    """A variant whose own pre-training equals an earlier one's (a VOC study on the R101 that a
    model variant also pre-trains) starts from that one's backbone instead of training it twice.
    Equal means the same backbone and pretrain settings once main's values fill in the rest."""
    first: dict[str, str] = {}
    out = {}
    for name, v in variants.items():
        if v.own_pretraining:
            shape = {**{k: config["model"].get(k, "resnet" if k == "arch" else None) for k in MODEL_OVERRIDE_KEYS},
                     **(v.model or {}), "norm": v.norm}
            pre = {**{k: config["pretrain"].get(k) for k in PRETRAIN_OVERRIDE_KEYS}, **(v.pretrain or {})}
            same = repr((sorted(shape.items()), sorted(pre.items())))
            if same in first:
                v = replace(v, shares_pretraining_of=first[same])
            else:
                first[same] = name
        out[name] = v
    return out


def entries_run(config: dict, kind) -> list[dict]:
    """The study.<section> entries of `kind` (a rethink.core.kinds.Kind) that run, in display
    order: regimes largest first; pretrainings and models only where they can run."""
    run = {"pretrainings": pretrainings_run, "models": models_run}.get(kind.section)
    entries = run(config) if run else config["study"].get(kind.section) or []
    return sorted(entries, key=lambda e: -e["fraction"]) if kind.subset else entries


def pretrainings_run(config: dict) -> list[dict]:
    """study.pretrainings, unless the study has no pre-training of its own to vary: a given
    backbone (pretrain.checkpoint) replaces it, or no pretrained init compares against scratch."""
    if config["pretrain"]["checkpoint"] or set(config["detection"]["inits"]) != {"scratch", "pretrained"}:
        return []
    return config["study"].get("pretrainings") or []


def models_run(config: dict) -> list[dict]:
    """study.models, unless the pretrained branch starts from a given backbone
    (pretrain.checkpoint): that file is a ResNet of main's shape, so another backbone would
    have no pre-training of its own to start from, and scratch alone would compare with nothing."""
    if config["pretrain"]["checkpoint"] and "pretrained" in config["detection"]["inits"]:
        return []
    return config["study"].get("models") or []


def _pretraining_variant(name: str, overrides: dict, base: Variant, where: str) -> Variant:
    """`base`'s detection runs (main's or a model variant's) from another pre-training: its
    pretrain.* overrides over the base's own, and at most a subset of the base's schedules. A
    subset has a subset of the base's checkpoints (the same trunk spacing and forks, each tail
    as the base's), so the scratch runs it is compared with are the base's own."""
    schedules = overrides.pop("schedules", None)
    unknown = sorted(set(overrides) - set(PRETRAIN_OVERRIDE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: base, schedules (a subset of "
                          f"the base's schedules) and the pretrain keys {list(PRETRAIN_OVERRIDE_KEYS)}")
    if not overrides:
        raise ConfigError(f"{where}: sets no pretrain key, so it would repeat {base.name}'s pretrained runs")
    det = dict(base.detection)
    if schedules is not None:
        extra = sorted(set(float(s) for s in schedules) - set(float(s) for s in det["schedules"]))
        if extra:
            theirs = "detection.schedules" if base.name == MAIN else f"study.models[{base.name}]'s schedules"
            raise ConfigError(f"{where}.schedules: {extra} not in {theirs} {det['schedules']} "
                              f"(its scratch runs are {base.name}'s)")
        det["schedules"] = list(schedules)
    return Variant(name, "pretraining", base.norm, 1.0, det, _plan(det, where),
                   pretrain={**(base.pretrain or {}), **overrides}, model=base.model, tta=base.tta, base=base.name)


def pretraining_key(variant: Variant) -> str:
    """The folder under pretrain/ of the backbone `variant`'s pretrained branch starts from:
    the norm's (GN, BN), or for a variant with a pre-training of its own NORM_NAME (NAME: the
    first variant with that same pre-training)."""
    norm = pretrain_norm(variant.norm)
    return f"{norm}_{variant.shares_pretraining_of or variant.name}" if variant.own_pretraining else norm


def split_pretraining_key(key: str) -> tuple[str, str]:
    """(norm, pretraining variant name or "") of a pretraining_key."""
    norm, _, name = key.partition("_")
    return norm, name


def pretrain_settings(config: dict, key: str) -> dict:
    """The pretrain config of the pre-training `key` (see pretraining_key)."""
    settings = {k: v for k, v in config["pretrain"].items() if k not in ("checkpoint", "input", "workers")}
    _, name = split_pretraining_key(key)
    if name:
        settings.update(variants(config)[name].pretrain or {})
    return {k: v for k, v in settings.items() if PRETRAIN_DEFAULTS.get(k, ...) != v}


def pretrain_model_settings(config: dict, key: str) -> dict:
    """The model config the pre-training `key` trains: its norm's, with a model variant's backbone."""
    norm, name = split_pretraining_key(key)
    variant = variants(config)[name] if name else None
    return model_settings(config, False, norm, variant if variant is not None and variant.model else None)


def seeds(config: dict) -> list[int]:
    """Detection seeds of every cell: detection.seed, detection.seed + 1, ..."""
    return [config["detection"]["seed"] + k for k in range(config["study"]["seeds"])]


# Keys of `detection` that change the weights a training segment produces. The schedule
# list and checkpoint spacing only decide which segments exist, so adding a schedule
# keeps every checkpoint already trained.
TRAIN_KEYS = ("one_x", "batch_size", "base_lr", "reference_batch", "momentum", "weight_decay",
              "warmup_iters", "warmup_factor", "flip_prob", "seed", "scales", "group_by_aspect", "bf16", "channels_last")

# Keys of `model` that only matter at inference time; the rest shape the weights.
EVAL_ONLY_MODEL_KEYS = ("score_thresh", "detections_per_img")


def train_settings(variant: Variant, seed: int) -> dict:
    """The keys that decide a training segment's weights; lr_decay only where it is not the
    default 0.1, so that runs from before the key keep their settings (rerun triggers, lineage)."""
    settings = {**{k: variant.detection[k] for k in TRAIN_KEYS}, "seed": seed}
    decay = variant.detection.get("lr_decay", LR_DECAY)
    return settings if decay == LR_DECAY else {**settings, "lr_decay": decay}


def model_settings(config: dict, for_eval: bool, norm: str | None = None,
                   variant: Variant | None = None) -> dict:
    """The model config as a job sees it (with `variant`: its norm and shape); training jobs
    don't see inference-only keys."""
    model = {k: v for k, v in config["model"].items() if for_eval or k not in EVAL_ONLY_MODEL_KEYS}
    if variant is not None:
        model.update({"norm": variant.norm, **(variant.model or {})})
        if variant.task:  # the task's head (keypoints, the one task); its OKS sigmas only score it
            model["keypoints"] = {"num": len(config["keypoints"]["sigmas"]), "head": dict(config["keypoints"]["head"])}
            if for_eval:
                model["oks_sigmas"] = list(config["keypoints"]["sigmas"])
        model.update(DATASETS.get(variant.dataset, {}))  # the dataset's model keys: VOC's boxes only
        if for_eval and variant.tta:
            model["tta"] = tta_settings(config, variant.tta)
    if norm is not None:
        model["norm"] = norm
    if model.get("arch") == "resnet":  # the default: left out, so the jobs' settings (their rerun
        del model["arch"]              # triggers and checkpoint lineage) are those before the key existed
    if model.get("arch") != "vit":     # the ViT's own keys: a ViT's alone, likewise
        model.pop("vit", None)
    return model


def tta_settings(config: dict, tta: dict) -> dict:
    """Test-time augmentation as an evaluation runs it: the short sides (null: model.min_size
    alone) and whether each is also run on the flipped image."""
    return {"scales": list(tta.get("scales") or [config["model"]["min_size"]]), "flip": bool(tta.get("flip", False))}


def eval_extra_by_variant(config: dict) -> dict:
    """{variant: inference-only model keys of its own} (test-time augmentation), for the
    training jobs' evaluations; variants without any are left out."""
    return {name: {"tta": tta_settings(config, v.tta)} for name, v in variants(config).items() if v.tta}


def eval_only_model_settings(config: dict) -> dict:
    """The inference-only model keys: what a training job adds to its model config to
    evaluate the checkpoints it writes as the evaluate rule would (a keypoint model also
    its OKS sigmas, which rethink.engine.train drops for the others)."""
    extra = {k: config["model"][k] for k in EVAL_ONLY_MODEL_KEYS}
    if any(v.task for v in variants(config).values()):
        extra["oks_sigmas"] = list(config["keypoints"]["sigmas"])
    return extra


def training_eval_settings(config: dict) -> dict:
    """How a training job scores the checkpoints it writes, in its own process, so that the
    evaluate job can adopt the result (evaluate.in_training false: it scores none)."""
    ev = config["evaluate"]
    if not ev["in_training"]:
        return {"in_training": False}
    return {"in_training": True, "extra": eval_only_model_settings(config),
            "extra_by_variant": eval_extra_by_variant(config), "batch_size": ev["batch_size"],
            "backend": ev["backend"], "curve_images": ev.get("curve_images")}


def given_backbone_settings(config: dict) -> dict | None:
    """The study's given backbone (pretrain.checkpoint) as a scratch branch's first job checks
    it, so that no training starts on a bad file; None without one."""
    path = config["pretrain"]["checkpoint"]
    return {"checkpoint": path, "input": config["pretrain"]["input"],
            "norm": pretrain_norm(config["model"]["norm"])} if path else None


def pretrain_norm(norm: str) -> str:
    """The norm a backbone for `norm` is pre-trained with: SyncBN on one process is BN, so
    SyncBN, BN and frozen BN share one BN pre-training, as the paper's models do."""
    return "BN" if norm in ("SyncBN", "BN", "FrozenBN") else norm  # GN, none: their own
