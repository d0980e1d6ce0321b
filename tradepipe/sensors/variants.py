"""Fans a generation out through the run queue: one evaluation run per candidate, then the selection.

While the newest generation is open (its selection not recorded), each tick requests a
``variant_evaluation_job`` run for every candidate not yet evaluated (one run per partition, run key
generation + variant, so a tick never asks twice), and once none is left, one ``live_pool_job`` run.
The run queue (``dagster.yaml``) runs them side by side in the analytics lane; a deployment's run
launcher places each run where it likes. Stopped by default, like the loop's schedule.
"""

from __future__ import annotations

import dagster as dg

from typing import Any

from tradepipe.resources.ledger import LedgerDatabase


def build_variant_generation_sensor(evaluation_job: Any, selection_job: Any) -> dg.SensorDefinition:
    @dg.sensor(
        name="variant_generation_sensor",
        jobs=[evaluation_job, selection_job],
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="The open generation's evaluations (one run per variant), then its selection into the live pool.",
    )
    def variant_generation_sensor(context: dg.SensorEvaluationContext, ledger: LedgerDatabase) -> dg.SensorResult | dg.SkipReason:
        from tradepipe.adapters.db.research import generation_rows, newest_generation, undecided

        with ledger.existing_sessions()() as session:
            generation = newest_generation(session)
            if generation is None or not undecided(session, generation):
                return dg.SkipReason("no open generation")
            waiting = [row.name for row in generation_rows(session, generation) if row.status == "candidate"]
        if waiting:
            return dg.SensorResult(run_requests=[
                dg.RunRequest(job_name=evaluation_job.name, partition_key=name, run_key=f"g{generation}-{name}") for name in waiting
            ])
        return dg.SensorResult(run_requests=[dg.RunRequest(job_name=selection_job.name, run_key=f"live_pool-g{generation}")])

    return variant_generation_sensor
