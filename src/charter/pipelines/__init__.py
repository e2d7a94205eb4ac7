"""Continuous training: snapshot -> validate data -> train -> register -> gates -> shadow ->
compare -> approval -> canary -> promote, as idempotent, resumable, audited steps
(:mod:`charter.pipelines.ct`), with OpenLineage run events (:mod:`charter.pipelines.openlineage`)
and training specs (:mod:`charter.pipelines.training`)."""

from charter.pipelines.ct import (
    STEPS,
    PipelineRun,
    PipelineSpec,
    StepRecord,
    get_pipeline_run,
    list_pipeline_runs,
    resume_pipeline,
    run_pipeline,
)
from charter.pipelines.training import TrainingSpec

__all__ = [
    "STEPS",
    "PipelineRun",
    "PipelineSpec",
    "StepRecord",
    "TrainingSpec",
    "get_pipeline_run",
    "list_pipeline_runs",
    "resume_pipeline",
    "run_pipeline",
]
