# Dataset prep: write the synthetic world (when no real folder is configured), then check
# the ImageNet and COCO layouts. Downstream rules depend on the check's stats file.

# The world's keys without its VOC-layout scenes' (data.synthetic.voc_*): those change only
# the VOC scenes, so they are no rerun trigger of the ImageNet and COCO ones.
SYNTHETIC_WORLD = {k: v for k, v in config["data"]["synthetic"].items() if not k.startswith("voc_")}


rule synthesize_imagenet:
    output:
        directory(SYNTHETIC_IMAGENET),
    params:
        synthetic=as_json(SYNTHETIC_WORLD),
        seed=config["data"]["synthetic"]["seed"],
    log:
        f"{R}/logs/data/synthesize_imagenet.log",
    threads: threads_for("data")
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.data.writers --imagenet {output:q} --config {params.synthetic:q} "
        "--seed {params.seed} > {log:q} 2>&1"


rule synthesize_coco:
    output:
        directory(SYNTHETIC_COCO),
    params:
        synthetic=as_json(SYNTHETIC_WORLD),
        seed=config["data"]["synthetic"]["seed"],
    log:
        f"{R}/logs/data/synthesize_coco.log",
    threads: threads_for("data")
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.data.writers --coco {output:q} --config {params.synthetic:q} "
        "--seed {params.seed} > {log:q} 2>&1"


rule synthesize_keypoints:
    output:
        train=f"{SYNTHETIC_KEYPOINTS}/person_keypoints_train2017.json",
        val=f"{SYNTHETIC_KEYPOINTS}/person_keypoints_val2017.json",
    params:
        synthetic=as_json(SYNTHETIC_WORLD),
        seed=config["data"]["synthetic"]["seed"],
        folder=lambda wildcards, output: os.path.dirname(output.train),
    log:
        f"{R}/logs/data/synthesize_keypoints.log",
    threads: threads_for("data")
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.data.writers --keypoints {params.folder:q} --config {params.synthetic:q} "
        "--seed {params.seed} > {log:q} 2>&1"


rule check_imagenet:
    input:
        [] if config["data"]["imagenet"] else SYNTHETIC_IMAGENET,
    output:
        IMAGENET_CHECKED,
    params:
        root=data_root(config["data"]["imagenet"], SYNTHETIC_IMAGENET),
        verify=config["data"]["verify_images"],
    log:
        f"{R}/logs/data/check_imagenet.log",
    threads: threads_for("data")
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.data.check --imagenet {params.root:q} --verify-images {params.verify} "
        "--config-key data.imagenet --out {output:q} > {log:q} 2>&1 || (cat {log:q} >&2; exit 1)"


rule check_coco:
    input:
        [] if config["data"]["coco"] else SYNTHETIC_COCO,
    output:
        COCO_CHECKED,
    params:
        root=data_root(config["data"]["coco"], SYNTHETIC_COCO),
        verify=config["data"]["verify_images"],
        corrupt=config["data"]["corrupt_images"],
    log:
        f"{R}/logs/data/check_coco.log",
    threads: threads_for("data")
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.data.check --coco {params.root:q} --verify-images {params.verify} "
        "--corrupt-images {params.corrupt} --config-key data.coco --out {output:q} > {log:q} 2>&1 || (cat {log:q} >&2; exit 1)"


# The keypoint task's files (study.tasks): person_keypoints_{train,val}2017.json of the same images.
rule check_keypoints:
    input:
        coco=COCO_CHECKED,
        keypoints=[] if config["data"]["coco"] else [task_annotations(None, s) for s in ("train", "val")],
    output:
        KEYPOINTS_CHECKED,
    params:
        annotations=lambda wildcards, input: os.path.dirname(input.keypoints[0]) if input.keypoints else KEYPOINTS_DIR,
        root=COCO,
        keypoints=len(config["keypoints"]["sigmas"]),
    log:
        f"{R}/logs/data/check_keypoints.log",
    threads: threads_for("data")
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.data.check --keypoints {params.annotations:q} --images {params.root:q} "
        "--num-keypoints {params.keypoints} --config-key keypoints.sigmas --out {output:q} > {log:q} 2>&1 "
        "|| (cat {log:q} >&2; exit 1)"


# A dataset variant's VOCdevkit (study.datasets, voc): the synthetic world's VOC-layout scenes
# when data.voc is null, checked and converted to COCO-format files in one job (rethink.data.voc).
rule synthesize_voc:
    output:
        directory(SYNTHETIC_VOC),
    params:
        synthetic=as_json(config["data"]["synthetic"]),
        seed=config["data"]["synthetic"]["seed"],
    log:
        f"{R}/logs/data/synthesize_voc.log",
    threads: threads_for("data")
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.data.writers --voc {output:q} --config {params.synthetic:q} "
        "--seed {params.seed} > {log:q} 2>&1"


rule convert_voc:
    input:
        [] if config["data"]["voc"] else SYNTHETIC_VOC,
    output:
        train=VOC_CONVERTED.format(split="train"),
        val=VOC_CONVERTED.format(split="val"),
        report=VOC_CHECKED,
    params:
        root=data_root(config["data"]["voc"], SYNTHETIC_VOC),
        train=" ".join(shlex.quote(s) for s in config["data"]["voc_sets"]["train"]),
        val=" ".join(shlex.quote(s) for s in config["data"]["voc_sets"]["val"]),
        classes=voc_class_args() if DATASET_VARIANTS else "",
        verify=config["data"]["verify_images"],
        folder=lambda wildcards, output: os.path.dirname(output.train),
    log:
        f"{R}/logs/data/convert_voc.log",
    threads: threads_for("data")
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.data.voc --devkit {params.root:q} --train {params.train} --val {params.val} "
        "{params.classes} --verify-images {params.verify} --out-dir {params.folder:q} "
        "--report {output.report:q} > {log:q} 2>&1 || (cat {log:q} >&2; exit 1)"


rule subset:
    input:
        checked=COCO_CHECKED,
    output:
        SUBSET,
    params:
        root=COCO,
        fraction=lambda wildcards: VARIANTS[wildcards.variant].fraction,
        seed=config["detection"]["seed"],
    log:
        f"{R}/logs/data/subset_{{variant}}.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.data.subsets --coco {params.root:q} --fraction {params.fraction} --seed {params.seed} "
        "--layout-stats {input.checked:q} --out {output:q} > {log:q} 2>&1"
