# Paper-style figures and tables, one rule and one script per figure. Each rule lists its
# script as an input, so editing a script reruns that figure alone; figure-only config
# keys (figures.*) are params of these rules only.


rule paper_reference:
    output:
        f"{R}/figures/paper_reference.json",
    params:
        reference=as_json(config["figures"]["reference"]),
    log:
        f"{R}/logs/figures/paper_reference.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "echo {params.reference:q} > {output:q} 2> {log:q}"


rule fig_ap_curves:
    input:
        **figure_inputs("ap_curves"),
        pretrain=PRETRAIN_METRICS if RUNS_PRETRAINING and PRETRAIN_METRICS else [],
    output:
        png=report(f"{R}/figures/ap_curves.png", caption="../report/ap_curves.rst",
                   category="Main comparison", labels={"figure": "AP vs iterations"}),
        pdf=f"{R}/figures/ap_curves.pdf",
    params:
        **figure_params(),
        pretrain=lambda wildcards, input: f"--pretrain {shlex.quote(input.pretrain)}" if input.pretrain else "",
    log:
        f"{R}/logs/figures/ap_curves.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.ap_curves --study {input.study:q} --metrics {input.metrics:q} "
        "{params.pretrain} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule fig_final_ap:
    input:
        **figure_inputs("final_ap"),
    output:
        png=report(f"{R}/figures/final_ap.png", caption="../report/final_ap.rst",
                   category="Schedules", labels={"figure": "final AP per schedule"}),
        pdf=f"{R}/figures/final_ap.pdf",
    params:
        **figure_params(),
        reference=reference_arg,
    log:
        f"{R}/logs/figures/final_ap.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.final_ap --study {input.study:q} --metrics {input.metrics:q} "
        "{params.reference} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule fig_less_data:
    input:
        **figure_inputs("less_data"),
    output:
        png=report(f"{R}/figures/less_data.png", caption="../report/less_data.rst",
                   category="Less data", labels={"figure": "AP vs iterations per data regime"}),
        pdf=f"{R}/figures/less_data.pdf",
    params:
        **figure_params(),
        reference=reference_arg,
    log:
        f"{R}/logs/figures/less_data.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.less_data --study {input.study:q} --metrics {input.metrics:q} "
        "{params.reference} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule fig_norms:
    input:
        **figure_inputs("norms"),
    output:
        png=report(f"{R}/figures/norms.png", caption="../report/norms.rst",
                   category="Normalisation", labels={"figure": "GN vs SyncBN"}),
        pdf=f"{R}/figures/norms.pdf",
    params:
        **figure_params(),
    log:
        f"{R}/logs/figures/norms.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.norms --study {input.study:q} --metrics {input.metrics:q} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule fig_pretrain_strength:
    input:
        **figure_inputs("pretrain_strength"),
    output:
        png=report(f"{R}/figures/pretrain_strength.png", caption="../report/pretrain_strength.rst",
                   category="Pre-training", labels={"figure": "pre-training strength"}),
        pdf=f"{R}/figures/pretrain_strength.pdf",
    params:
        **figure_params(),
    log:
        f"{R}/logs/figures/pretrain_strength.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.pretrain_strength --study {input.study:q} --metrics {input.metrics:q} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


# Other backbones (study.models): each one's scratch and pretrained runs, and the gap.
rule fig_models:
    input:
        **figure_inputs("models"),
    output:
        png=report(f"{R}/figures/models.png", caption="../report/models.rst",
                   category="Models", labels={"figure": "deeper, wider and unnormalised models"}),
        pdf=f"{R}/figures/models.pdf",
    params:
        **figure_params(),
        reference=reference_arg,
    log:
        f"{R}/logs/figures/models.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.models --study {input.study:q} --metrics {input.metrics:q} "
        "{params.reference} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule fig_keypoints:
    input:
        **figure_inputs("keypoints"),
        table_module=f"{FIG_SRC}/final_table.py",
        mechanism=f"{FIG_SRC}/variant_metric.py",
    output:
        png=report(f"{R}/figures/keypoints.png", caption="../report/keypoints.rst",
                   category="Keypoints", labels={"figure": "keypoint AP, scratch vs pretrained"}),
        pdf=f"{R}/figures/keypoints.pdf",
        csv=f"{R}/tables/keypoints.csv",
        md=f"{R}/tables/keypoints.md",
    params:
        **figure_params(),
        reference=reference_arg,
        module="keypoints",
    log:
        f"{R}/logs/figures/keypoints.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.{params.module} --study {input.study:q} --metrics {input.metrics:q} "
        "{params.reference} --out-csv {output.csv:q} --out-md {output.md:q} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


# The other kinds scored on a metric of their own: the same figure and table mechanism.
use rule fig_keypoints as fig_datasets with:
    input:
        **figure_inputs("datasets"),
        table_module=f"{FIG_SRC}/final_table.py",
        mechanism=f"{FIG_SRC}/variant_metric.py",
    output:
        png=report(f"{R}/figures/datasets.png", caption="../report/datasets.rst",
                   category="Datasets", labels={"figure": "VOC mAP, scratch vs pretrained"}),
        pdf=f"{R}/figures/datasets.pdf",
        csv=f"{R}/tables/datasets.csv",
        md=f"{R}/tables/datasets.md",
    params:
        **figure_params(),
        reference=reference_arg,
        module="datasets",
    log:
        f"{R}/logs/figures/datasets.log",


use rule fig_keypoints as fig_recipes with:
    input:
        **figure_inputs("recipes"),
        table_module=f"{FIG_SRC}/final_table.py",
        mechanism=f"{FIG_SRC}/variant_metric.py",
    output:
        png=report(f"{R}/figures/recipes.png", caption="../report/recipes.rst",
                   category="Recipes", labels={"figure": "enhanced recipe, scratch vs pretrained"}),
        pdf=f"{R}/figures/recipes.pdf",
        csv=f"{R}/tables/recipes.csv",
        md=f"{R}/tables/recipes.md",
    params:
        **figure_params(),
        reference=reference_arg,
        module="recipes",
    log:
        f"{R}/logs/figures/recipes.log",


rule compute_seen:
    input:
        script=f"{PACKAGE_DIR}/rethink/analysis/compute.py",
        study=STUDY,
        checked=COCO_CHECKED,
        subsets=sorted({subset_input(v) for v in VARIANTS if subset_input(v)}),
        task_checked=KEYPOINTS_CHECKED if TASK_VARIANTS else [],
    output:
        csv=report(f"{R}/tables/compute_seen.csv", caption="../report/compute_seen.rst",
                   category="Cost", labels={"figure": "images, instances, pixels seen (table)"}),
        json=f"{R}/tables/compute_seen.json",
    params:
        annotations=lambda wildcards: " ".join(shlex.quote(f"{k}={v}") for k, v in variant_annotations(wildcards).items()),
    log:
        f"{R}/logs/figures/compute_seen_table.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.analysis.compute --study {input.study:q} --annotations {params.annotations} "
        "--layout-stats {input.checked:q} --out-csv {output.csv:q} --out-json {output.json:q} > {log:q} 2>&1"


rule world_stats:
    input:
        script=f"{PACKAGE_DIR}/rethink/analysis/world_stats.py",
        compute=f"{R}/tables/compute_seen.json",
        coco=COCO_CHECKED,
        imagenet=IMAGENET_CHECKED if RUNS_PRETRAINING else [],
    output:
        csv=report(f"{R}/tables/world_stats.csv", caption="../report/world_stats.rst",
                   category="Cost", labels={"figure": "the data, next to the paper's (table)"}),
        md=f"{R}/tables/world_stats.md",
    params:
        model=as_json(study_config.model_settings(config, False)),
        imagenet=lambda wildcards, input: f"--imagenet-layout {shlex.quote(input.imagenet)}" if input.imagenet else "",
    log:
        f"{R}/logs/figures/world_stats.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.analysis.world_stats --compute {input.compute:q} --coco-layout {input.coco:q} "
        "{params.imagenet} --model {params.model:q} --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule fig_compute_seen:
    input:
        script=f"{FIG_SRC}/compute_seen.py",
        common=f"{FIG_SRC}/common.py",
        compute=f"{R}/tables/compute_seen.csv",
    output:
        png=report(f"{R}/figures/compute_seen.png", caption="../report/compute_seen.rst",
                   category="Cost", labels={"figure": "images, instances, pixels seen"}),
        pdf=f"{R}/figures/compute_seen.pdf",
    params:
        **figure_params(),
    log:
        f"{R}/logs/figures/compute_seen.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.compute_seen --compute {input.compute:q} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule table_final_metrics:
    input:
        **figure_inputs("final_table"),
    output:
        csv=report(f"{R}/tables/final_metrics.csv", caption="../report/final_metrics.rst",
                   category="Main comparison", labels={"figure": "final metrics table"}),
        md=f"{R}/tables/final_metrics.md",
        tex=f"{R}/tables/final_metrics.tex",
    log:
        f"{R}/logs/figures/final_table.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.final_table --study {input.study:q} --metrics {input.metrics:q} "
        "--out-csv {output.csv:q} --out-md {output.md:q} --out-tex {output.tex:q} > {log:q} 2>&1"


rule claims:
    input:
        script=f"{PACKAGE_DIR}/rethink/analysis/claims.py",
        results_module=f"{PACKAGE_DIR}/rethink/analysis/results.py",
        stats_module=f"{PACKAGE_DIR}/rethink/analysis/stats.py",
        study=STUDY,
        metrics=METRICS,
        reference=REFERENCE,
        preregistration=config["claims"].get("preregistration") or [],
        val_noise=config["claims"].get("val_noise") or [],
    output:
        csv=report(f"{R}/tables/claims.csv", caption="../report/claims.rst",
                   category="Main comparison", labels={"figure": "the paper's claims, checked"}),
        md=f"{R}/tables/claims.md",
    params:
        reference=reference_arg,
        margin=config["claims"]["margin"],
        preregistration=lambda wildcards, input: (f"--preregistration {shlex.quote(input.preregistration)}"
                                                  if input.preregistration else ""),
        val_noise=lambda wildcards, input: f"--val-noise {shlex.quote(input.val_noise)}" if input.val_noise else "",
        tolerance=(f"--tolerance {config['claims']['tolerance']}"
                   if config["claims"]["tolerance"] is not None and config["figures"]["reference"] else ""),
    log:
        f"{R}/logs/figures/claims.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.analysis.claims --study {input.study:q} --metrics {input.metrics:q} {params.reference} "
        "--margin {params.margin} {params.tolerance} {params.preregistration} {params.val_noise} --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule table_job_costs:
    input:
        script=f"{PACKAGE_DIR}/rethink/analysis/costs.py",
        benchmarks=benchmark_files(),
        phases=phase_files(),
    output:
        csv=report(f"{R}/tables/job_costs.csv", caption="../report/job_costs.rst",
                   category="Cost", labels={"figure": "wall time and memory per stage"}),
        md=f"{R}/tables/job_costs.md",
    log:
        f"{R}/logs/figures/job_costs.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.analysis.costs --out-csv {output.csv:q} --out-md {output.md:q} "
        "--phases {input.phases:q} -- {input.benchmarks:q} > {log:q} 2>&1"


# The pre-training curve(s): val top-1 and train loss per epoch, one line per pre-training run.
PRETRAIN_CURVES = {key: pretraining_file(key, "metrics.json") for key in PRETRAININGS}


rule fig_pretrain_curve:
    input:
        script=f"{FIG_SRC}/pretrain_curve.py",
        common=f"{FIG_SRC}/common.py",
        curves=list(PRETRAIN_CURVES.values()),
    output:
        png=report(f"{R}/figures/pretrain_curve.png", caption="../report/pretrain_curve.rst",
                   category="Pre-training", labels={"figure": "val top-1 per epoch"}),
        pdf=f"{R}/figures/pretrain_curve.pdf",
    params:
        **figure_params(),
        metrics=" ".join(shlex.quote(f"{key}={path}") for key, path in PRETRAIN_CURVES.items()),
    log:
        f"{R}/logs/figures/pretrain_curve.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.pretrain_curve --metrics {params.metrics} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"
