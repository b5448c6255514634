# Rethinking ImageNet Pre-training (He, Girshick, Dollar, ICCV 2019) as a Snakemake workflow.
#   snakemake --cores all                 # the default study (config.yaml)
#   snakemake --cores all --configfile X  # another study (real data, other schedules, ...)
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config.yaml"


report: "workflow/report/workflow.rst"

validate(config, "workflow/schemas/config.schema.yaml")

# Our package (workflow/rethink): imported here, and by the jobs through PYTHONPATH.
PACKAGE_DIR = os.path.join(workflow.basedir, "workflow")
sys.path.insert(0, PACKAGE_DIR)
os.environ.update(PYTHONPATH=PACKAGE_DIR)  # set for the jobs, not read
from rethink.core import driver

# Jobs run `python`: the interpreter running Snakemake, however it was started (e.g.
# .venv/bin/snakemake without an activated environment); --use-conda's envs still come first.
driver.jobs_use_this_interpreter()
# One live driver per folder; locks left by a killed one are cleared.
if workflow.is_main_process:
    driver.claim_folder(".snakemake")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/detection.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/figures.smk"


rule all:
    input:
        FIGURES,
