"""Alerts from monitored numbers: a per-model policy of tiers, and a pure engine that turns one
window of observations into alert state changes. No I/O here: :mod:`charter.monitoring.
alert_store` persists what :func:`evaluate` decides, :mod:`charter.monitoring.notify` delivers it.

Tiers and thresholds
--------------------
Each rule watches one metric of the catalogue (:mod:`charter.monitoring.catalogue`) and has up to
three tiers, ``info`` < ``warning`` < ``critical``. A value *reaches* a tier's threshold when it
is at or past it in the rule's direction: ``above`` (``value >= t``), ``below`` (``value <= t``) or
``abs`` (``|value| >= t``, for changes that hurt either way). Charter's defaults:

======================  =========  ======  =======  ========  ==========================
metric                  direction  info    warning  critical  meaning
======================  =========  ======  =======  ========  ==========================
feature_psi             above      -       0.10     0.25      per feature; the PSI bands
score_psi               above      -       0.10     0.25      the score's PSI
approval_rate_change    abs        -       0.05     0.10      approval rate moved (points)
auc_change              below      -       -0.03    -0.05     relative AUC drop
auc_estimated_change    below      -       -0.03    -0.05     relative estimated AUC drop
missing_rate            above      -       0.05     0.20      per feature
schema_violation_rate   above      -       0.01     0.05      per feature
new_category_rate       above      -       0.01     0.05      per feature
volume_ratio            above      -       2.0      3.0       decisions per day vs normal
error_rate              above      -       0.01     0.05      failed scorings
latency_p99_ms          above      -       50       200       milliseconds
ece                     above      0.05    0.10     -         calibration error
features_drifted        above      3       -        -         three or more features
======================  =========  ======  =======  ========  ==========================

So a PSI under 0.10 is stable, 0.10 up to 0.25 is a warning and 0.25 or more is critical.
Every rule also has, with these defaults:

* ``hysteresis = 0.1``: a tier that an alert holds is kept until the value is back past the
  threshold by this fraction of the threshold's size: below ``t - h|t|`` for ``above`` (PSI
  warning 0.10 clears under 0.09), above ``t + h|t|`` for ``below`` (an AUC change of -0.03
  clears above -0.027). A value that dips just inside the line does not end an alert.
* ``clear_windows = 2``: consecutive windows under the held tier before the alert steps down a
  tier (de-escalates) or, when no tier is reached at all, resolves.
* ``min_windows = 1``: consecutive breaching windows before a *new* alert opens (until then it is
  ``pending``, like a Prometheus rule's ``for``; a pending alert is not shown or notified).
* ``cooldown = 30 days``: a resolved alert whose fingerprint breaches again within the cooldown
  (inclusive, counted from the last window it judged) re-opens, the same alert with its history,
  instead of starting a new one; and a step down (de-escalation) is notified only when the last
  notification of the alert is at least the cooldown old. A rise in severity always notifies.

Notifications go out when an alert opens, re-opens, escalates or resolves (and de-escalates,
past the cooldown); a window that merely confirms an open alert (``updated``) notifies nobody,
so a breach that lasts a year is one alert and one notification, not twelve.

The policy in TOML
------------------
The ``[alerts]`` table of a model's policy file; each ``[alerts.<metric>]`` table is merged key by
key over that metric's default rule (a metric without one must say its ``direction``). Every key
is checked, and an error names the field (``policy.alerts.feature_psi.critical``)::

    [alerts]
    use_defaults = true      # false: only the metrics that have a table below get a rule
    hysteresis = 0.1         # these four apply to every rule that does not set its own
    clear_windows = 2
    min_windows = 1
    cooldown = "30d"         # "90m", "12h", "30d", "2w"

    [alerts.feature_psi]
    critical = 0.30          # keeps warning = 0.10 from the defaults

    [alerts.ece]
    info = false             # false: no such tier
    critical = 0.20

    [alerts.auc]             # no default rule: the direction is required
    direction = "below"      # above | below | abs
    warning = 0.70
    critical = 0.65

    [alerts.volume_ratio]
    enabled = false

De-duplication
--------------
An alert's identity, its *fingerprint*, is the SHA-256 of ``(model, metric, feature)``: one
alert per feature per metric per model, however many windows breach. The version is a label,
not part of the identity: a retrained version that still sees the same drift continues the
same alert (it would otherwise leave the old version's alert open forever, since nobody
monitors the old version any more). When a window holds several versions' values for one
fingerprint (champion and challenger), the worst one is judged and its version labels the alert.

Time
----
:func:`evaluate` is given ``now``, the time of the evaluation on the *data* clock: the store
passes the window's end, so replaying history gives exactly the alerts that running live gave.
Windows must come in order; a window not after the one an alert last judged is skipped (so
re-applying a window is a no-op). A value of None (or NaN) means "not judged" (too few rows,
say): it neither breaches nor counts as clean. An alert whose fingerprint is not observed at all
in a window (a feature the new version no longer uses) keeps its state until a person resolves it.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import pairwise
from types import MappingProxyType
from typing import Any, Literal

from charter.errors import InvalidArgument
from charter.monitoring.catalogue import METRICS

# Severities in ascending order.
INFO, WARNING, CRITICAL = "info", "warning", "critical"
SEVERITIES = (INFO, WARNING, CRITICAL)
_RANK = {None: 0, INFO: 1, WARNING: 2, CRITICAL: 3}

Direction = Literal["above", "below", "abs"]
DIRECTIONS: tuple[str, ...] = ("above", "below", "abs")

# Alert statuses. Pending alerts are the engine's own (a breach streak shorter than min_windows).
PENDING, OPEN, ACKNOWLEDGED, RESOLVED = "pending", "open", "acknowledged", "resolved"
STATUSES = (PENDING, OPEN, ACKNOWLEDGED, RESOLVED)
ACTIVE = (OPEN, ACKNOWLEDGED)

# Transition kinds; the audit action of each is ``alert.<kind>``.
OPENED, REOPENED, ESCALATED, DEESCALATED, UPDATED = (
    "opened",
    "reopened",
    "escalated",
    "deescalated",
    "updated",
)
TRANSITIONS = (OPENED, REOPENED, ESCALATED, DEESCALATED, UPDATED, RESOLVED)

RULE_KEYS = (
    "direction",
    "info",
    "warning",
    "critical",
    "hysteresis",
    "clear_windows",
    "min_windows",
    "cooldown",
    "enabled",
)
# Settings of [alerts] itself: they apply to every rule that does not set its own.
SHARED_KEYS = ("hysteresis", "clear_windows", "min_windows", "cooldown")
POLICY_KEYS = ("use_defaults", *SHARED_KEYS)

DEFAULT_HYSTERESIS = 0.1
DEFAULT_CLEAR_WINDOWS = 2
DEFAULT_MIN_WINDOWS = 1
DEFAULT_COOLDOWN = timedelta(days=30)

# metric: (direction, info, warning, critical) -- the table in the module docstring.
DEFAULT_THRESHOLDS: dict[str, tuple[Direction, float | None, float | None, float | None]] = {
    "feature_psi": ("above", None, 0.10, 0.25),
    "score_psi": ("above", None, 0.10, 0.25),
    "approval_rate_change": ("abs", None, 0.05, 0.10),
    "auc_change": ("below", None, -0.03, -0.05),
    "auc_estimated_change": ("below", None, -0.03, -0.05),
    "missing_rate": ("above", None, 0.05, 0.20),
    "schema_violation_rate": ("above", None, 0.01, 0.05),
    "new_category_rate": ("above", None, 0.01, 0.05),
    "volume_ratio": ("above", None, 2.0, 3.0),
    "error_rate": ("above", None, 0.01, 0.05),
    "latency_p99_ms": ("above", None, 50.0, 200.0),
    "ece": ("above", 0.05, 0.10, None),
    "features_drifted": ("above", 3.0, None, None),
}

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def severity_rank(severity: str | None) -> int:
    """0 for none, then 1 info, 2 warning, 3 critical."""
    return _RANK[severity]


def fingerprint(model: str, metric: str, feature: str = "") -> str:
    """The identity of an alert: SHA-256 hex of ``model``, ``metric`` and ``feature``."""
    text = "\x1f".join((model, metric, feature))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_duration(value: Any, field: str) -> timedelta:
    """``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` or ``"0s"`` (a number is seconds)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        seconds = -1.0
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(int(m.group(1)) * _UNITS[m.group(2)])
    else:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidArgument(
            f"{field} must be a duration, not {value!r}",
            field=field,
            remedy='write a whole number with a unit: "30m", "12h", "7d" or "2w"',
        )
    return timedelta(seconds=seconds)


def format_duration(d: timedelta) -> str:
    s = int(d.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if s and s % _UNITS[unit] == 0:
            return f"{s // _UNITS[unit]}{unit}"
    return f"{s}s"


@dataclass(frozen=True)
class AlertRule:
    """When one metric raises an alert, and how it steps down and ends (see the module)."""

    metric: str
    direction: Direction = "above"
    info: float | None = None
    warning: float | None = None
    critical: float | None = None
    hysteresis: float = DEFAULT_HYSTERESIS
    clear_windows: int = DEFAULT_CLEAR_WINDOWS
    min_windows: int = DEFAULT_MIN_WINDOWS
    cooldown: timedelta = DEFAULT_COOLDOWN
    enabled: bool = True

    def __post_init__(self) -> None:
        where = f"policy.alerts.{self.metric}"
        if self.metric not in METRICS:
            raise InvalidArgument(
                f"{self.metric!r} is not a monitored metric",
                field=where,
                remedy=f"use one of: {', '.join(METRICS)}",
            )
        if self.direction not in DIRECTIONS:
            raise InvalidArgument(
                f"direction {self.direction!r} is unknown",
                field=f"{where}.direction",
                remedy='use "above", "below" or "abs" (|value|)',
            )
        set_tiers = self.thresholds()
        for sev, t in set_tiers:
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
                raise InvalidArgument(
                    f"the {sev} threshold must be a finite number, not {t!r}",
                    field=f"{where}.{sev}",
                    remedy=f"write a number, or {sev} = false for no {sev} tier",
                )
            if self.direction == "abs" and t < 0:
                raise InvalidArgument(
                    f"the {sev} threshold of an abs rule is a size and cannot be negative",
                    field=f"{where}.{sev}",
                    remedy=f"write {abs(t)}",
                )
        for (lo_sev, lo), (hi_sev, hi) in pairwise(set_tiers):
            ordered = hi <= lo if self.direction == "below" else hi >= lo
            if not ordered:
                word = "at or below" if self.direction == "below" else "at or above"
                raise InvalidArgument(
                    f"the {hi_sev} threshold ({hi}) must lie {word} the {lo_sev} threshold "
                    f"({lo}) for a rule whose direction is {self.direction!r}",
                    field=f"{where}.{hi_sev}",
                    remedy="order the tiers info, warning, critical from least to most severe",
                )
        if self.enabled and not set_tiers:
            raise InvalidArgument(
                f"the rule for {self.metric} has no threshold",
                field=where,
                remedy="set at least one of info, warning, critical (or enabled = false)",
            )
        h = self.hysteresis
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 <= h < 1:
            raise InvalidArgument(
                f"hysteresis must be a fraction in [0, 1), not {h!r}",
                field=f"{where}.hysteresis",
                remedy="e.g. hysteresis = 0.1 (clear 10% inside the threshold)",
            )
        for key in ("clear_windows", "min_windows"):
            n = getattr(self, key)
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise InvalidArgument(
                    f"{key} must be a whole number of at least 1, not {n!r}",
                    field=f"{where}.{key}",
                    remedy=f"e.g. {key} = 2",
                )
        if not isinstance(self.cooldown, timedelta) or self.cooldown < timedelta(0):
            raise InvalidArgument(
                f"cooldown must be a non-negative duration, not {self.cooldown!r}",
                field=f"{where}.cooldown",
                remedy='e.g. cooldown = "7d"',
            )

    # -- judging values ---------------------------------------------------------------------
    def thresholds(self) -> tuple[tuple[str, float], ...]:
        """The tiers that are set, least severe first."""
        return tuple(
            (sev, t)
            for sev, t in ((INFO, self.info), (WARNING, self.warning), (CRITICAL, self.critical))
            if t is not None
        )

    def threshold(self, severity: str | None) -> float | None:
        return None if severity is None else getattr(self, severity)

    def _reaches(self, value: float, t: float) -> bool:
        if self.direction == "below":
            return value <= t
        return (abs(value) if self.direction == "abs" else value) >= t

    def clear_point(self, t: float) -> float:
        """Where a held tier with threshold ``t`` lets go (hysteresis)."""
        margin = self.hysteresis * abs(t)
        return t + margin if self.direction == "below" else t - margin

    def _holds(self, value: float, t: float) -> bool:
        return self._reaches(value, self.clear_point(t))

    def severity_of(self, value: float) -> str | None:
        """The most severe tier ``value`` reaches, without hysteresis (None: within limits)."""
        out = None
        for sev, t in self.thresholds():
            if self._reaches(value, t):
                out = sev
        return out

    def judge(self, value: float, held: str | None) -> str | None:
        """The tier of ``value`` for an alert that holds tier ``held``: hysteresis keeps a held
        tier (or a lower one) while the value stays past its clear point."""
        level = self.severity_of(value)
        for sev, t in reversed(self.thresholds()):
            if _RANK[sev] <= _RANK[held] and _RANK[sev] > _RANK[level] and self._holds(value, t):
                level = sev
                break
        return level

    def worse(self, a: float, b: float) -> bool:
        """Whether value ``a`` is worse than ``b`` under this rule's direction."""
        if self.direction == "below":
            return a < b
        if self.direction == "abs":
            return abs(a) > abs(b)
        return a > b

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "direction": self.direction,
            "info": self.info,
            "warning": self.warning,
            "critical": self.critical,
            "hysteresis": self.hysteresis,
            "clear_windows": self.clear_windows,
            "min_windows": self.min_windows,
            "cooldown": format_duration(self.cooldown),
            "enabled": self.enabled,
        }


def _default_rules() -> dict[str, AlertRule]:
    return {
        m: AlertRule(metric=m, direction=d, info=i, warning=w, critical=c)
        for m, (d, i, w, c) in DEFAULT_THRESHOLDS.items()
    }


@dataclass(frozen=True)
class AlertPolicy:
    """The rules of one model, keyed by metric. Build it from TOML with :meth:`from_toml` or
    :meth:`from_dict` (the ``[alerts]`` table); :meth:`default` is Charter's table above."""

    rules: Mapping[str, AlertRule] = field(default_factory=_default_rules)

    def __post_init__(self) -> None:
        for key, rule in self.rules.items():
            if key != rule.metric:
                raise InvalidArgument(
                    f"the rule under {key!r} is for {rule.metric!r}",
                    field=f"policy.alerts.{key}",
                    remedy="key every rule by its own metric",
                )
        object.__setattr__(self, "rules", MappingProxyType(dict(self.rules)))

    @classmethod
    def default(cls) -> AlertPolicy:
        return cls()

    def rule(self, metric: str) -> AlertRule | None:
        """The enabled rule for ``metric``, or None."""
        r = self.rules.get(metric)
        return r if r is not None and r.enabled else None

    def to_dict(self) -> dict[str, Any]:
        return {m: r.to_dict() for m, r in sorted(self.rules.items())}

    @classmethod
    def from_toml(cls, text: str, *, where: str = "policy") -> AlertPolicy:
        """The ``[alerts]`` table of a TOML document (the defaults when it has none). Other
        tables of the document belong to other readers and are left alone."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise InvalidArgument(
                f"the policy is not valid TOML: {e}", field=where, remedy="fix the TOML syntax"
            ) from None
        table = raw.get("alerts", {})
        return cls.from_dict(table, where=f"{where}.alerts")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "policy.alerts") -> AlertPolicy:
        """Rules from the ``[alerts]`` table: its own settings (:data:`POLICY_KEYS`) and one
        sub-table per metric, merged key by key over the defaults. Every key is checked."""
        if not isinstance(d, Mapping):
            raise InvalidArgument(
                f"[{where}] must be a table", field=where, remedy="write [alerts] as a table"
            )
        shared: dict[str, Any] = {}
        use_defaults = True
        for key, value in d.items():
            if isinstance(value, Mapping):
                if key not in METRICS:
                    raise InvalidArgument(
                        f"[{where}.{key}] is not a monitored metric",
                        field=f"{where}.{key}",
                        remedy=f"use a metric of the catalogue: {', '.join(METRICS)}",
                    )
                continue
            if key not in POLICY_KEYS:
                raise InvalidArgument(
                    f"unknown setting {key!r} in [{where}]",
                    field=f"{where}.{key}",
                    remedy=f"use only: {', '.join(POLICY_KEYS)}, or a [{where}.<metric>] table",
                )
            if key == "use_defaults":
                if not isinstance(value, bool):
                    raise InvalidArgument(
                        f"{where}.use_defaults must be true or false",
                        field=f"{where}.use_defaults",
                        remedy="write true or false",
                    )
                use_defaults = value
            else:
                shared[key] = _setting(key, value, f"{where}.{key}")
        rules: dict[str, AlertRule] = {}
        base = _default_rules()
        if use_defaults:
            for metric, rule in base.items():
                rules[metric] = _rebuild(_fields_of(rule, shared), where)
        for metric, table in d.items():
            if not isinstance(table, Mapping):
                continue
            rules[metric] = _rule_from_table(metric, table, shared, base.get(metric), where)
        return cls(rules=rules)


def _fields_of(rule: AlertRule, values: Mapping[str, Any]) -> dict[str, Any]:
    out = rule.to_dict()
    out["cooldown"] = rule.cooldown
    out.update(values)
    return out


def _rebuild(kwargs: Mapping[str, Any], where: str) -> AlertRule:
    try:
        return AlertRule(**kwargs)
    except InvalidArgument as e:
        f = e.field or ""
        if f.startswith("policy.alerts"):
            f = where + f[len("policy.alerts") :]
        raise InvalidArgument(e.message, field=f, remedy=e.remedy) from None


def _setting(key: str, value: Any, where: str) -> Any:
    """Type-check one rule setting (``where`` names it in errors)."""
    if key == "direction":
        if value not in DIRECTIONS:
            raise InvalidArgument(
                f"{where} = {value!r} is unknown",
                field=where,
                remedy='use "above", "below" or "abs"',
            )
        return value
    if key in SEVERITIES:
        if value is False:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgument(
                f"{where} must be a number, not {value!r}",
                field=where,
                remedy=f"write a number, e.g. {key} = 0.25, or {key} = false for no {key} tier",
            )
        return float(value)
    if key == "hysteresis":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise InvalidArgument(
                f"{where} must be a fraction in [0, 1), not {value!r}",
                field=where,
                remedy="e.g. hysteresis = 0.1",
            )
        return float(value)
    if key in ("clear_windows", "min_windows"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgument(
                f"{where} must be a whole number of at least 1, not {value!r}",
                field=where,
                remedy=f"e.g. {key} = 2",
            )
        return value
    if key == "cooldown":
        return parse_duration(value, where)
    if key == "enabled":
        if not isinstance(value, bool):
            raise InvalidArgument(
                f"{where} must be true or false", field=where, remedy="write true or false"
            )
        return value
    raise InvalidArgument(  # pragma: no cover - callers check the key first
        f"unknown setting {key!r}", field=where, remedy=f"use only: {', '.join(RULE_KEYS)}"
    )


def _rule_from_table(
    metric: str,
    table: Mapping[str, Any],
    shared: Mapping[str, Any],
    base: AlertRule | None,
    where: str,
) -> AlertRule:
    here = f"{where}.{metric}"
    for key in table:
        if key not in RULE_KEYS:
            raise InvalidArgument(
                f"unknown setting {key!r} in [{here}]",
                field=f"{here}.{key}",
                remedy=f"use only: {', '.join(RULE_KEYS)}",
            )
    values = {k: _setting(k, v, f"{here}.{k}") for k, v in table.items()}
    if base is None:
        if "direction" not in values:
            raise InvalidArgument(
                f"{metric} has no default rule, so [{here}] must say its direction",
                field=f"{here}.direction",
                remedy='add direction = "above" (or "below", or "abs")',
            )
        kwargs: dict[str, Any] = {"metric": metric, **shared, **values}
    else:
        kwargs = _fields_of(base, {**shared, **values})
    return _rebuild(kwargs, where)


# ---------------------------------------------------------------------------------- the engine
@dataclass(frozen=True, kw_only=True)
class Observation:
    """One monitored value of one window (``value`` None: not judged in this window)."""

    metric: str
    value: float | None
    feature: str = ""
    model: str
    version: int | None = None
    window_start: datetime
    window_end: datetime

    def __post_init__(self) -> None:
        for name in ("window_start", "window_end"):
            if getattr(self, name).tzinfo is None:
                raise InvalidArgument(
                    f"{name} must be timezone-aware",
                    field=f"observation.{name}",
                    remedy="pass datetimes with tzinfo=UTC",
                )
        if self.window_start > self.window_end:
            raise InvalidArgument(
                "an observation's window ends before it starts",
                field="observation.window_end",
                remedy="pass window_start <= window_end",
            )
        if not self.model:
            raise InvalidArgument(
                "an observation needs a model", field="observation.model", remedy="name it"
            )

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.model, self.metric, self.feature)

    @property
    def judged(self) -> bool:
        return self.value is not None and not math.isnan(self.value)


@dataclass(frozen=True, kw_only=True)
class AlertState:
    """What the engine knows of one fingerprint. ``alert_id`` is the stored row (None: new)."""

    fingerprint: str
    model: str
    metric: str
    feature: str
    version: int | None
    status: str
    severity: str
    value: float | None
    threshold: float | None
    summary: str
    first_window_end: datetime
    last_window_end: datetime
    windows_breached: int
    clean_windows: int
    started_at: datetime
    last_notified_at: datetime | None = None
    resolved_at: datetime | None = None
    alert_id: int | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True)
class Transition:
    """One change of one alert: ``kind`` is one of :data:`TRANSITIONS`; ``notify`` says whether
    it goes to the webhook outbox (``firing`` unless the alert resolved)."""

    kind: str
    before: AlertState | None
    after: AlertState
    observation: Observation
    notify: bool
    reason: str

    @property
    def action(self) -> str:
        return f"alert.{self.kind}"

    @property
    def notification_status(self) -> str:
        return "resolved" if self.after.status == RESOLVED else "firing"


@dataclass(frozen=True)
class Evaluation:
    """The result of one window: every state after it, and what changed.

    ``dropped`` are pending fingerprints whose streak broke (forget them); ``skipped`` are
    fingerprints whose observation was not newer than the window they last judged."""

    states: Mapping[str, AlertState]
    transitions: tuple[Transition, ...]
    dropped: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()

    @property
    def notifications(self) -> tuple[Transition, ...]:
        return tuple(t for t in self.transitions if t.notify)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _subject(obs: Observation) -> str:
    who = obs.model if obs.version is None else f"{obs.model} v{obs.version}"
    what = obs.metric if not obs.feature else f"{obs.metric} of {obs.feature}"
    return f"{what} on {who}"


def summarize(rule: AlertRule, obs: Observation, severity: str | None, clean: int = 0) -> str:
    """One line for people: what, where, how bad, against which threshold."""
    if severity is None:
        return (
            f"{_subject(obs)} is {_fmt(obs.value)}, back within limits "
            f"for {clean} window{'s' if clean != 1 else ''}"
        )
    t = rule.threshold(severity)
    op = {"above": ">=", "below": "<=", "abs": "|x| >="}[rule.direction]
    return f"{_subject(obs)} is {_fmt(obs.value)}: {severity} ({op} {_fmt(t)})"


def _pick(observations: Iterable[Observation], policy: AlertPolicy) -> dict[str, Observation]:
    """The observation judged per fingerprint: the worst value (ties: the newer version)."""
    chosen: dict[str, Observation] = {}
    for obs in observations:
        rule = policy.rule(obs.metric)
        if rule is None or not obs.judged:
            continue
        assert obs.value is not None  # judged
        fp = obs.fingerprint
        prev = chosen.get(fp)
        if prev is None:
            chosen[fp] = obs
            continue
        assert prev.value is not None
        if rule.worse(obs.value, prev.value) or (
            obs.value == prev.value and (obs.version or 0) > (prev.version or 0)
        ):
            chosen[fp] = obs
    return chosen


def evaluate(
    state: Mapping[str, AlertState],
    observations: Iterable[Observation],
    policy: AlertPolicy,
    now: datetime,
) -> Evaluation:
    """Apply one window's observations to the alert states (pure; see the module docstring).

    ``state`` holds the pending and active alerts, and resolved ones that may still re-open
    (within their rule's cooldown); ``now`` is the evaluation time on the data clock.
    """
    if now.tzinfo is None:
        raise InvalidArgument(
            "now must be timezone-aware", field="now", remedy="pass a datetime with tzinfo=UTC"
        )
    states = dict(state)
    transitions: list[Transition] = []
    dropped: list[str] = []
    skipped: list[str] = []
    for fp, obs in sorted(_pick(observations, policy).items()):
        rule = policy.rule(obs.metric)
        assert rule is not None and obs.value is not None  # _pick keeps only these
        before = state.get(fp)
        if before is not None and obs.window_end <= before.last_window_end:
            skipped.append(fp)
            continue
        if before is not None and before.active:
            t = _step_active(rule, before, obs, now)
            states[fp] = t.after
            transitions.append(t)
            continue
        severity = rule.severity_of(obs.value)
        if severity is None:
            if before is not None and before.status == PENDING:
                del states[fp]
                dropped.append(fp)
            continue
        if (
            before is not None
            and before.status == RESOLVED
            and now - before.last_window_end <= rule.cooldown
        ):
            after = replace(
                before,
                version=obs.version,
                status=OPEN,
                severity=severity,
                value=obs.value,
                threshold=rule.threshold(severity),
                summary=summarize(rule, obs, severity),
                last_window_end=obs.window_end,
                windows_breached=before.windows_breached + 1,
                clean_windows=0,
                last_notified_at=now,
                resolved_at=None,
            )
            states[fp] = after
            transitions.append(
                Transition(
                    REOPENED,
                    before,
                    after,
                    obs,
                    True,
                    f"breached again within the cooldown ({format_duration(rule.cooldown)}) "
                    "of its resolution",
                )
            )
            continue
        streak = (
            before.windows_breached + 1 if before is not None and before.status == PENDING else 1
        )
        first = before.first_window_end if before is not None and before.status == PENDING else None
        new = AlertState(
            fingerprint=fp,
            model=obs.model,
            metric=obs.metric,
            feature=obs.feature,
            version=obs.version,
            status=PENDING,
            severity=severity,
            value=obs.value,
            threshold=rule.threshold(severity),
            summary=summarize(rule, obs, severity),
            first_window_end=first or obs.window_end,
            last_window_end=obs.window_end,
            windows_breached=streak,
            clean_windows=0,
            started_at=now,
            alert_id=before.alert_id if before is not None and before.status == PENDING else None,
        )
        if streak < rule.min_windows:
            states[fp] = new
            continue
        after = replace(new, status=OPEN, last_notified_at=now)
        states[fp] = after
        reason = (
            f"reached the {severity} threshold"
            if rule.min_windows == 1
            else f"breached {streak} windows in a row (min_windows {rule.min_windows})"
        )
        transitions.append(Transition(OPENED, None, after, obs, True, reason))
    return Evaluation(
        states=MappingProxyType(states),
        transitions=tuple(transitions),
        dropped=tuple(dropped),
        skipped=tuple(skipped),
    )


def _step_active(
    rule: AlertRule, before: AlertState, obs: Observation, now: datetime
) -> Transition:
    """The next state of an open or acknowledged alert."""
    assert obs.value is not None
    level = rule.judge(obs.value, before.severity)
    common: dict[str, Any] = {
        "version": obs.version,
        "value": obs.value,
        "last_window_end": obs.window_end,
        "windows_breached": before.windows_breached + (level is not None),
    }
    quiet_long_enough = (
        before.last_notified_at is None or now - before.last_notified_at >= rule.cooldown
    )
    if level is not None and _RANK[level] > _RANK[before.severity]:
        after = replace(
            before,
            **common,
            status=OPEN,
            severity=level,
            threshold=rule.threshold(level),
            summary=summarize(rule, obs, level),
            clean_windows=0,
            last_notified_at=now,
        )
        return Transition(
            ESCALATED, before, after, obs, True, f"{before.severity} -> {level}: severity rose"
        )
    if level == before.severity:
        after = replace(before, **common, summary=summarize(rule, obs, level), clean_windows=0)
        return Transition(UPDATED, before, after, obs, False, "still breaching")
    clean = before.clean_windows + 1
    if clean < rule.clear_windows:
        under = "within limits" if level is None else f"under the {before.severity} tier"
        summary = (
            f"{_subject(obs)} is {_fmt(obs.value)}: {before.severity} until it is {under} "
            f"for {rule.clear_windows} windows ({clean} so far)"
        )
        after = replace(before, **common, summary=summary, clean_windows=clean)
        return Transition(
            UPDATED,
            before,
            after,
            obs,
            False,
            f"under the held {before.severity} tier for {clean} of {rule.clear_windows} windows",
        )
    if level is None:
        after = replace(
            before,
            **common,
            status=RESOLVED,
            summary=summarize(rule, obs, None, clean),
            clean_windows=clean,
            last_notified_at=now,
            resolved_at=now,
        )
        return Transition(
            RESOLVED,
            before,
            after,
            obs,
            True,
            f"within limits (past the hysteresis line) for {clean} windows",
        )
    notify = quiet_long_enough
    after = replace(
        before,
        **common,
        severity=level,
        threshold=rule.threshold(level),
        summary=summarize(rule, obs, level),
        clean_windows=0,
        last_notified_at=now if notify else before.last_notified_at,
    )
    return Transition(
        DEESCALATED,
        before,
        after,
        obs,
        notify,
        f"{before.severity} -> {level}: under the held tier for {clean} windows",
    )


# ------------------------------------------------------------------------- stored alert records
@dataclass(frozen=True, kw_only=True)
class Alert:
    """An alert as stored: the engine's state plus what people did to it."""

    id: int
    fingerprint: str
    model: str
    version: int | None
    metric: str
    feature: str
    severity: str
    status: str
    value: float | None
    threshold: float | None
    summary: str
    labels: Mapping[str, str]
    first_window_end: datetime
    last_window_end: datetime
    windows_breached: int
    clean_windows: int
    started_at: datetime
    updated_at: datetime
    last_notified_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None

    def state(self) -> AlertState:
        return AlertState(
            fingerprint=self.fingerprint,
            model=self.model,
            metric=self.metric,
            feature=self.feature,
            version=self.version,
            status=self.status,
            severity=self.severity,
            value=self.value,
            threshold=self.threshold,
            summary=self.summary,
            first_window_end=self.first_window_end,
            last_window_end=self.last_window_end,
            windows_breached=self.windows_breached,
            clean_windows=self.clean_windows,
            started_at=self.started_at,
            last_notified_at=self.last_notified_at,
            resolved_at=self.resolved_at,
            alert_id=self.id,
        )

    def to_dict(self) -> dict[str, Any]:
        from charter.clock import iso

        def t(x: datetime | None) -> str | None:
            return None if x is None else iso(x)

        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "model": self.model,
            "version": self.version,
            "metric": self.metric,
            "feature": self.feature,
            "severity": self.severity,
            "status": self.status,
            "value": self.value,
            "threshold": self.threshold,
            "summary": self.summary,
            "labels": dict(self.labels),
            "first_window_end": t(self.first_window_end),
            "last_window_end": t(self.last_window_end),
            "windows_breached": self.windows_breached,
            "clean_windows": self.clean_windows,
            "started_at": t(self.started_at),
            "updated_at": t(self.updated_at),
            "last_notified_at": t(self.last_notified_at),
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": t(self.acknowledged_at),
            "resolved_by": self.resolved_by,
            "resolved_at": t(self.resolved_at),
        }


def alertname(metric: str) -> str:
    """The Alertmanager ``alertname`` of a metric's alerts: ``CharterFeaturePsi``; the
    Prometheus rules in deploy/prometheus use the same names."""
    return "Charter" + "".join(part.capitalize() for part in metric.split("_"))


def labels_of(state: AlertState) -> dict[str, str]:
    """The alert's Alertmanager labels (empty values are left out, as Prometheus does)."""
    out = {
        "alertname": alertname(state.metric),
        "severity": state.severity,
        "model": state.model,
        "metric": state.metric,
    }
    if state.version is not None:
        out["version"] = str(state.version)
    if state.feature:
        out["feature"] = state.feature
    return out
