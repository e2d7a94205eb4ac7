"""The monitoring part of a model's policy: windows, label maturity, costs, drift judgement,
alert rules and retraining triggers, from one TOML file.

The file may be the model's validation policy too: the tables read here are ``[monitoring]``
(with ``[monitoring.cost]`` and ``[monitoring.drift]``), ``[alerts]`` and ``[retraining]``; any
other top-level table is left to the validation gates. Every key is checked; a misspelt key is
refused with the list of keys it could be.

Durations are written ``"30d"``, ``"12h"`` or ``"2w"``.

```toml
[monitoring]
window = "30d"            # length of a window
step = "30d"              # distance between window starts (< window: sliding windows)
label_maturity = "90d"    # a window's performance is judged this long after it ends
min_decisions = 100       # fewer decisions in a window: drift is shown, not judged
volume_lookback = "90d"   # the normal daily volume is the mean over this period before a window

[monitoring.cost]
false_positive = 1.0      # declining a good applicant
false_negative = 5.0      # approving a bad one

[retraining]
mode = "hybrid"           # hybrid | schedule | events | off
schedule = "90d"          # retrain at least this often (quarterly)
feature_psi = 0.20        # ... or when this many features drift past this PSI
min_features = 3
auc_drop = 0.03           # ... or when the AUC falls more than 3% below the baseline
auc_drop_alpha = 0.05     #     and the fall is significant (one-sided, Hanley-McNeil SE)
volume_ratio = 2.0        # ... or when volume is more than twice normal
cooldown = "30d"          # no new event trigger this soon after the last one
kpi = { metric = "default_rate", max = 0.08 }
```
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from charter.errors import InvalidArgument
from charter.monitoring.alerts import AlertPolicy
from charter.monitoring.catalogue import METRICS
from charter.monitoring.window import CostMatrix
from charter.stats.policy import DriftPolicy

_DURATION = re.compile(r"^\s*(\d+)\s*([hdw])\s*$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
MODES = ("hybrid", "schedule", "events", "off")


def parse_duration(value: object, where: str) -> timedelta:
    m = _DURATION.match(value) if isinstance(value, str) else None
    if m is None or int(m.group(1)) == 0:
        raise InvalidArgument(
            f"{value!r} is not a duration",
            field=where,
            remedy='write a positive whole number of hours, days or weeks: "12h", "30d", "2w"',
        )
    return int(m.group(1)) * _UNITS[m.group(2)]


def _strict(d: object, where: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise InvalidArgument(f"{where} must be a table", field=where, remedy=f"write [{where}]")
    unknown = sorted(set(d) - set(keys))
    if unknown:
        raise InvalidArgument(
            f"unknown key {unknown[0]!r} in [{where}]",
            field=f"{where}.{unknown[0]}",
            remedy=f"use one of: {', '.join(keys)}",
        )
    return d


def _number(
    d: Mapping[str, Any], key: str, where: str, default: float, *, lo: float = 0.0
) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not v >= lo:
        raise InvalidArgument(
            f"{where}.{key} must be a number of at least {lo:g}, not {v!r}",
            field=f"{where}.{key}",
            remedy=f"e.g. {default!r}",
        )
    return float(v)


def _count(d: Mapping[str, Any], key: str, where: str, default: int) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise InvalidArgument(
            f"{where}.{key} must be a whole number of at least 1, not {v!r}",
            field=f"{where}.{key}",
            remedy=f"e.g. {default}",
        )
    return v


@dataclass(frozen=True)
class MonitorSettings:
    window: timedelta = timedelta(days=30)
    step: timedelta = timedelta(days=30)
    label_maturity: timedelta = timedelta(days=90)
    min_decisions: int = 100
    volume_lookback: timedelta = timedelta(days=90)
    cost: CostMatrix = field(default_factory=CostMatrix)
    drift: DriftPolicy = field(default_factory=DriftPolicy)

    KEYS = ("window", "step", "label_maturity", "min_decisions", "volume_lookback", "cost", "drift")

    @classmethod
    def from_dict(cls, raw: object, where: str = "monitoring") -> MonitorSettings:
        d = _strict(raw, where, cls.KEYS)
        window = parse_duration(d.get("window", "30d"), f"{where}.window")
        step = parse_duration(d["step"], f"{where}.step") if "step" in d else window
        if step > window:
            raise InvalidArgument(
                "the step is longer than the window, so some decisions would never be monitored",
                field=f"{where}.step",
                remedy="use a step no longer than the window",
            )
        c = _strict(d.get("cost", {}), f"{where}.cost", ("false_positive", "false_negative"))
        cost = CostMatrix(
            _number(c, "false_positive", f"{where}.cost", 1.0),
            _number(c, "false_negative", f"{where}.cost", 5.0),
        )
        drift_raw = d.get("drift", {})
        if not isinstance(drift_raw, Mapping):
            raise InvalidArgument(
                f"{where}.drift must be a table",
                field=f"{where}.drift",
                remedy="[monitoring.drift]",
            )
        return cls(
            window=window,
            step=step,
            label_maturity=parse_duration(
                d.get("label_maturity", "90d"), f"{where}.label_maturity"
            ),
            min_decisions=_count(d, "min_decisions", where, 100),
            volume_lookback=parse_duration(
                d.get("volume_lookback", "90d"), f"{where}.volume_lookback"
            ),
            cost=cost,
            drift=DriftPolicy.from_dict(dict(drift_raw)),
        )


@dataclass(frozen=True)
class KpiLimit:
    metric: str
    max: float | None = None
    min: float | None = None

    def breached(self, value: float | None) -> bool:
        if value is None:
            return False
        return (self.max is not None and value > self.max) or (
            self.min is not None and value < self.min
        )


@dataclass(frozen=True)
class RetrainPolicy:
    mode: str = "hybrid"
    schedule: timedelta = timedelta(days=90)
    feature_psi: float = 0.20
    min_features: int = 3
    auc_drop: float = 0.03
    auc_drop_alpha: float = 0.05
    volume_ratio: float = 2.0
    cooldown: timedelta = timedelta(days=30)
    kpi: KpiLimit | None = None

    KEYS = (
        "mode",
        "schedule",
        "feature_psi",
        "min_features",
        "auc_drop",
        "auc_drop_alpha",
        "volume_ratio",
        "cooldown",
        "kpi",
    )

    @property
    def on_schedule(self) -> bool:
        return self.mode in ("hybrid", "schedule")

    @property
    def on_events(self) -> bool:
        return self.mode in ("hybrid", "events")

    @classmethod
    def from_dict(cls, raw: object, where: str = "retraining") -> RetrainPolicy:
        d = _strict(raw, where, cls.KEYS)
        mode = d.get("mode", "hybrid")
        if mode not in MODES:
            raise InvalidArgument(
                f"unknown retraining mode {mode!r}",
                field=f"{where}.mode",
                remedy=f"use one of: {', '.join(MODES)}",
            )
        kpi = None
        if "kpi" in d:
            k = _strict(d["kpi"], f"{where}.kpi", ("metric", "max", "min"))
            metric = k.get("metric")
            if metric not in METRICS:
                raise InvalidArgument(
                    f"unknown KPI metric {metric!r}",
                    field=f"{where}.kpi.metric",
                    remedy=f"use a monitored metric, e.g. {', '.join(sorted(METRICS)[:6])}, ...",
                )
            if "max" not in k and "min" not in k:
                raise InvalidArgument(
                    "a KPI needs a max or a min",
                    field=f"{where}.kpi",
                    remedy='e.g. kpi = { metric = "default_rate", max = 0.08 }',
                )
            kpi = KpiLimit(
                str(metric),
                _number(k, "max", f"{where}.kpi", 0.0, lo=-1e300) if "max" in k else None,
                _number(k, "min", f"{where}.kpi", 0.0, lo=-1e300) if "min" in k else None,
            )
        return cls(
            mode=str(mode),
            schedule=parse_duration(d.get("schedule", "90d"), f"{where}.schedule"),
            feature_psi=_number(d, "feature_psi", where, 0.20),
            min_features=_count(d, "min_features", where, 3),
            auc_drop=_number(d, "auc_drop", where, 0.03),
            auc_drop_alpha=_number(d, "auc_drop_alpha", where, 0.05),
            volume_ratio=_number(d, "volume_ratio", where, 2.0),
            cooldown=parse_duration(d.get("cooldown", "30d"), f"{where}.cooldown"),
            kpi=kpi,
        )


@dataclass(frozen=True)
class MonitoringPolicy:
    monitoring: MonitorSettings = field(default_factory=MonitorSettings)
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    retraining: RetrainPolicy = field(default_factory=RetrainPolicy)
    text: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], text: str = "") -> MonitoringPolicy:
        return cls(
            monitoring=MonitorSettings.from_dict(d.get("monitoring", {})),
            alerts=AlertPolicy.from_dict(d.get("alerts", {}), where="alerts"),
            retraining=RetrainPolicy.from_dict(d.get("retraining", {})),
            text=text,
        )

    @classmethod
    def from_toml(cls, text: str, where: str = "policy") -> MonitoringPolicy:
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise InvalidArgument(
                f"the policy is not valid TOML: {e}", field=where, remedy="fix the TOML syntax"
            ) from None
        return cls.from_dict(d, text)


def load_policy(path: Path | str | None) -> MonitoringPolicy:
    """The policy in ``path``, or the defaults when ``path`` is None."""
    if path is None:
        return MonitoringPolicy()
    p = Path(path)
    if not p.is_file():
        raise InvalidArgument(
            f"no policy file at {str(p)!r}", field="policy", remedy="check the path"
        )
    return MonitoringPolicy.from_toml(p.read_text(encoding="utf-8"), str(p))
