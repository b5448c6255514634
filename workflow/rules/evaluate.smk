# COCO evaluation of every checkpoint (COCOeval, bbox and segm), then one tidy table of all
# metrics that the figure rules read. The training job has already scored each checkpoint
# it wrote; an evaluate job adopts that result when it was made with these very settings
# and the same checkpoint file (no torch, well under a second), and evaluates otherwise.


# One rule for every variant: its inputs and result files follow from the variant's kind.
# bbox_results.json and metrics.json are its declared outputs (every model has boxes; metrics
# are written last); segm and keypoints results are written beside them.
rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        metrics=f"{EVAL_DIR}/metrics.json",
        bbox=f"{EVAL_DIR}/bbox_results.json",
    params:
        root=lambda wildcards: variant_root(wildcards.variant),
        checkpoint=lambda wildcards: evaluated_checkpoint(wildcards)[0],
        model=lambda wildcards: variant_model(wildcards, for_eval=True),
        outputs=evaluate_outputs,
        batch_size=config["evaluate"]["batch_size"],
        backend=config["evaluate"]["backend"],
        device=config["device"],
        val_images=lambda wildcards: curve_images_arg(wildcards),
    log:
        f"{R}/logs/eval/{CELL}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{CELL}.tsv"
    threads: threads_for("evaluate")
    resources:
        **resources_for("evaluate"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.core.gpus --count {resources.gpu} -- python -m rethink.evaluation.job "
        "--coco {params.root:q} --model {params.model:q} --checkpoint {params.checkpoint:q} "
        "--layout-stats {input.checked:q} --out-metrics {output.metrics:q} --out-bbox {output.bbox:q} "
        "{params.outputs} --variant {wildcards.variant} --seed {wildcards.seed} --init {wildcards.init} "
        "--branch {wildcards.branch} --iteration {wildcards.iteration} "
        "--batch-size {params.batch_size} --backend {params.backend} {params.val_images} --threads {threads} "
        "--device {params.device} --gpus {resources.gpu} > {log:q} 2>&1"


# A pretraining variant's scratch cells are its base's (main's or a model variant's;
# rethink.analysis.shared_runs): recorded under its name, not trained or evaluated again.
if PRETRAINING_VARIANTS:

    ruleorder: share_scratch > evaluate

    rule share_scratch:
        input:
            base=lambda wildcards: cell_path(f"{EVAL_DIR}/metrics.json", VARIANTS[wildcards.variant].base, wildcards.seed,
                                             "scratch", wildcards.branch, int(wildcards.iteration)),
        output:
            f"{R}/eval/{{variant}}/seed{{seed}}/scratch/{{branch}}/iter_{{iteration}}/metrics.json",
        wildcard_constraints:
            variant="|".join(re.escape(v) for v in PRETRAINING_VARIANTS),
        log:
            f"{R}/logs/eval/{{variant}}/seed{{seed}}/scratch/{{branch}}/iter_{{iteration}}.log",
        threads: 1
        resources:
            **resources_for("data"),
        conda:
            "../../envs/plot.yaml"
        shell:
            "python -m rethink.analysis.shared_runs --metrics {input.base:q} --variant {wildcards.variant} "
            "--out {output:q} > {log:q} 2>&1"


rule collect_metrics:
    input:
        study=STUDY,
        metrics=[cell_path(f"{EVAL_DIR}/metrics.json", *cell) for cell in all_checkpoints()],
    output:
        f"{R}/metrics/all_metrics.csv",
    log:
        f"{R}/logs/metrics/collect_metrics.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.analysis.results --study {input.study:q} --out {output:q} {input.metrics:q} > {log:q} 2>&1"
