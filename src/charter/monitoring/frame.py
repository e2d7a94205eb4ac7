"""The flat decision frame: one row per logged decision, the unit that monitoring reads.

The same columns come from the database (:mod:`charter.monitoring.source`), from a Parquet export
of the decision log, and from a Spark partition, so one accumulator serves all three.

===================  ===========================  ===============================================
column               dtype                        meaning
===================  ===========================  ===============================================
decision_id          str                          the decision's id
created_at           datetime64[us, UTC]          when it was logged
entity_key           str                          the applicant, account or card
version              int64                        model version that answered
variant              str                          champion | challenger | canary
score                float64                      the returned score (probability of a bad)
threshold            float64                      the decision threshold in force
decision             str                          approve | decline
latency_ms           float64                      parse to durable log, in ms
label                float64                      1 bad, 0 good, NaN when no outcome yet
label_observed_at    datetime64[us, UTC]          when the outcome happened (NaT if unknown)
f__<feature>         float64 or str               one column per input feature
===================  ===========================  ===============================================

Features are prefixed with ``f__`` so that a feature named like a decision column (``score``,
say) cannot collide with it; :func:`feature_column` and :func:`feature_name` convert.
"""

from __future__ import annotations

FEATURE_PREFIX = "f__"

DECISION_COLUMNS = (
    "decision_id",
    "created_at",
    "entity_key",
    "version",
    "variant",
    "score",
    "threshold",
    "decision",
    "latency_ms",
    "label",
    "label_observed_at",
)


def feature_column(name: str) -> str:
    return FEATURE_PREFIX + name


def feature_name(column: str) -> str:
    return column[len(FEATURE_PREFIX) :] if column.startswith(FEATURE_PREFIX) else column
