"""`python -m snakemake` for the SLURM tests, with the executor plugin's status-check back-off off.

snakemake-executor-plugin-slurm (2.x) sleeps `--slurm-init-seconds-before-status-checks` after a
status check in which some job finished, but 10 s longer after each check in which none did (up
to 180 s; hard-coded, no option turns it off). On a real cluster that spares slurmctld; on this
one-node test cluster it was most of the SLURM tests' wall time: checks 1, 12, 33, 64 s after a
submission, so a 6 s job was seen done after 12 s and a 14 s training segment after 33 s, and a
Snakemake whose job was scancel'ed slept out its 21 s back-off before it could exit.

Here every check is followed by the same `--seconds-between-status-checks` sleep. Nothing else
changes: jobs still go through sbatch, their state still comes from the plugin's own squeue query
and status handling (COMPLETED, CANCELLED, ...), and the in-job `python -m snakemake` (jobstep
executor) is the plain one.
"""
import sys

import snakemake_executor_plugin_slurm as slurm_plugin
from snakemake.cli import main

_check_active_jobs = slurm_plugin.Executor.check_active_jobs


async def check_active_jobs(self, active_jobs):
    async for job in _check_active_jobs(self, active_jobs):
        yield job
    # the plugin has just set its next sleep (its back-off); overrule it with the fixed interval
    self.next_seconds_between_status_checks = (
        self.workflow.remote_execution_settings.seconds_between_status_checks)


slurm_plugin.Executor.check_active_jobs = check_active_jobs

if __name__ == "__main__":
    sys.exit(main())
