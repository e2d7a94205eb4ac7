"""Every number that monitoring stores, by dimension: the one list that the time series, the
Prometheus export, the alert rules and the Grafana dashboard are checked against.

A metric is stored in ``monitor_series`` under its name (with ``feature`` set for per-feature
metrics and ``""`` otherwise) and exported to Prometheus as ``charter_monitor_<name>`` with the
labels ``model``, ``version`` and, per feature, ``feature``.
"""

from __future__ import annotations

from dataclasses import dataclass

DIMENSIONS = (
    "performance",
    "estimated",
    "data_drift",
    "prediction",
    "data_quality",
    "operations",
    "business",
)


@dataclass(frozen=True)
class Metric:
    name: str
    dimension: str
    help: str
    per_feature: bool = False

    @property
    def prometheus_name(self) -> str:
        return f"charter_monitor_{self.name}"


_METRICS = (
    # performance on matured labels
    Metric("auc", "performance", "AUC on decisions whose labels have matured"),
    Metric("gini", "performance", "Gini (2 AUC - 1) on matured labels"),
    Metric("ks", "performance", "Kolmogorov-Smirnov separation on matured labels"),
    Metric("precision", "performance", "Precision of 'decline' (score >= threshold) for bads"),
    Metric("recall", "performance", "Recall of bads by 'decline' at the threshold"),
    Metric("brier", "performance", "Brier score on matured labels"),
    Metric("ece", "performance", "Expected calibration error (10 uniform bins)"),
    Metric("auc_change", "performance", "Relative AUC change from the validation baseline"),
    Metric("labelled", "performance", "Decisions in the window with a matured label"),
    # estimated without labels
    Metric("auc_estimated", "estimated", "AUC expected from calibrated scores (no labels)"),
    Metric("auc_estimated_low", "estimated", "Lower end of the estimated AUC's band"),
    Metric("auc_estimated_high", "estimated", "Upper end of the estimated AUC's band"),
    Metric("auc_estimated_change", "estimated", "Relative change of the estimated AUC"),
    Metric("bad_rate_estimated", "estimated", "Bad rate expected from calibrated scores"),
    Metric("precision_estimated", "estimated", "Precision expected from calibrated scores"),
    Metric("recall_estimated", "estimated", "Recall expected from calibrated scores"),
    # data drift
    Metric("feature_psi", "data_drift", "PSI of the feature against the reference", True),
    Metric("feature_p_value", "data_drift", "Corrected p-value of the drift test", True),
    Metric("features_drifted", "data_drift", "Features whose drift tier is warning or worse"),
    # prediction drift
    Metric("score_psi", "prediction", "PSI of the score against the validation baseline"),
    Metric("score_mean", "prediction", "Mean score"),
    Metric("score_p50", "prediction", "Median score (within one baseline fine bin)"),
    Metric("score_p90", "prediction", "90th percentile score (within one baseline fine bin)"),
    Metric("approval_rate", "prediction", "Share of decisions approved at the threshold"),
    Metric("approval_rate_change", "prediction", "Approval rate minus the baseline's"),
    # data quality
    Metric("missing_rate", "data_quality", "Share of missing values", True),
    Metric("schema_violation_rate", "data_quality", "Share of non-finite or mistyped values", True),
    Metric("out_of_range_rate", "data_quality", "Share outside the reference range", True),
    Metric("new_category_rate", "data_quality", "Share of categories unseen in reference", True),
    # operations
    Metric("volume", "operations", "Decisions in the window"),
    Metric("volume_ratio", "operations", "Decisions per day against the normal rate"),
    Metric("latency_p50_ms", "operations", "Median scoring latency in milliseconds"),
    Metric("latency_p95_ms", "operations", "95th percentile scoring latency (ms)"),
    Metric("latency_p99_ms", "operations", "99th percentile scoring latency (ms)"),
    Metric("error_rate", "operations", "Failed scorings over all scoring attempts"),
    # business impact
    Metric("default_rate", "business", "Bad rate among approved decisions with matured labels"),
    Metric("cost", "business", "Cost of wrong decisions from the cost matrix (matured labels)"),
    Metric("cost_per_decision", "business", "Cost per labelled decision"),
    Metric("false_positive_cost", "business", "Cost of declined goods (matured labels)"),
)

METRICS: dict[str, Metric] = {m.name: m for m in _METRICS}

# Exported beside the per-metric gauges.
WINDOW_END_METRIC = "charter_monitor_window_end_timestamp_seconds"
ALERTS_OPEN_METRIC = "charter_alerts_open"
