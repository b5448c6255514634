# Analysis of the collected metrics: the claims' tests, the images, instances and pixels each
# run has seen (compute_seen) and the world's statistics beside the paper's (world_stats), and
# the jobs' measured costs. Each rule lists its module as an input, so editing it reruns it.


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


rule claims:
    input:
        script=f"{PACKAGE_DIR}/rethink/analysis/claims.py",
        tests_module=f"{PACKAGE_DIR}/rethink/analysis/claim_tests.py",
        results_module=f"{PACKAGE_DIR}/rethink/analysis/results.py",
        inputs_module=f"{PACKAGE_DIR}/rethink/analysis/inputs.py",
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
