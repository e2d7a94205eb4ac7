"""When is drift worth an alert? A policy that is data, and multiple-testing corrections.

At a million rows every p-value is tiny, and at a hundred rows every PSI is noisy, so a feature is
flagged only when its change is both *significant* (its p-value, corrected for the number of
features tested, is below ``alpha``) and *material* (an effect size reaches a band):

=========  ==========================================  ==========================================
tier       numeric features                            categorical features
=========  ==========================================  ==========================================
warning    PSI >= 0.10 or normalised Wasserstein        PSI >= 0.10 or Jensen-Shannon distance
           >= 0.05 (a shift of 0.05 reference sd)       >= 0.03
critical   PSI >= 0.25 or normalised Wasserstein        PSI >= 0.25 or Jensen-Shannon distance
           >= 0.25                                      >= 0.10
=========  ==========================================  ==========================================

The PSI bands 0.10 and 0.25 are the industry's; the other thresholds are Charter's defaults, all
set in :class:`DriftPolicy` (``from_dict`` reads them from JSON or TOML).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from charter.errors import InvalidArgument

CORRECTIONS = ("bonferroni", "bh", "none")
TIERS = ("stable", "warning", "critical")


@dataclass(frozen=True)
class DriftPolicy:
    alpha: float = 0.05
    correction: str = "bonferroni"
    require_significance: bool = True
    psi_warning: float = 0.10
    psi_critical: float = 0.25
    wasserstein_warning: float = 0.05
    wasserstein_critical: float = 0.25
    js_warning: float = 0.03
    js_critical: float = 0.10
    min_rows: int = 30

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise InvalidArgument("alpha must lie in (0, 1)", field="alpha", remedy="e.g. 0.05")
        if self.correction not in CORRECTIONS:
            raise InvalidArgument(
                f"unknown correction {self.correction!r}",
                field="correction",
                remedy=f"use one of: {', '.join(CORRECTIONS)}",
            )
        for warn, crit in (
            ("psi_warning", "psi_critical"),
            ("wasserstein_warning", "wasserstein_critical"),
            ("js_warning", "js_critical"),
        ):
            w, c = getattr(self, warn), getattr(self, crit)
            if not (0 <= w <= c):
                raise InvalidArgument(
                    f"{warn} ({w}) must be non-negative and at most {crit} ({c})", field=warn
                )
        if self.min_rows < 1:
            raise InvalidArgument("min_rows must be at least 1", field="min_rows")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftPolicy:
        known = {f.name: f for f in fields(cls)}
        for key in d:
            if key not in known:
                raise InvalidArgument(
                    f"unknown drift policy setting {key!r}",
                    field=key,
                    remedy=f"use only: {', '.join(known)}",
                )
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            kind = known[key].type
            try:
                if kind in ("float", float):
                    kwargs[key] = float(value)
                elif kind in ("int", int):
                    kwargs[key] = int(value)
                elif kind in ("bool", bool):
                    if not isinstance(value, bool):
                        raise TypeError
                    kwargs[key] = value
                else:
                    kwargs[key] = str(value)
            except (TypeError, ValueError):
                raise InvalidArgument(
                    f"drift policy setting {key!r} has the wrong type: {value!r}", field=key
                ) from None
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def adjust_p_values(p: np.ndarray, method: str) -> np.ndarray:
    """Adjusted p-values: Bonferroni (``p * m``), Benjamini-Hochberg step-up, or none.

    NaN (untested) entries stay NaN and do not count towards ``m``.
    """
    p = np.asarray(p, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    q = p[ok]
    if method == "none":
        adj = q
    elif method == "bonferroni":
        adj = np.minimum(q * m, 1.0)
    elif method == "bh":
        order = np.argsort(q)
        ranked = q[order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adj = np.empty_like(q)
        adj[order] = np.minimum(ranked, 1.0)
    else:
        raise InvalidArgument(f"unknown correction {method!r}", field="correction")
    out[ok] = adj
    return out


def tier_for(
    policy: DriftPolicy,
    *,
    kind: str,
    psi: float,
    effect: float,
    p_adjusted: float,
    n_current: int,
) -> tuple[str, tuple[str, ...]]:
    """The tier of one feature and the reasons, in words, that decided it."""
    if n_current < policy.min_rows:
        return "stable", (f"only {n_current} current rows; at least {policy.min_rows} are judged",)
    eff_name = "normalised Wasserstein" if kind == "numeric" else "Jensen-Shannon distance"
    warn = policy.wasserstein_warning if kind == "numeric" else policy.js_warning
    crit = policy.wasserstein_critical if kind == "numeric" else policy.js_critical
    level = 0
    reasons: list[str] = []
    if psi >= policy.psi_critical:
        level = 2
        reasons.append(f"PSI {psi:.4f} >= {policy.psi_critical} (critical band)")
    elif psi >= policy.psi_warning:
        level = 1
        reasons.append(f"PSI {psi:.4f} >= {policy.psi_warning} (warning band)")
    if effect >= crit:
        level = 2
        reasons.append(f"{eff_name} {effect:.4f} >= {crit} (critical band)")
    elif effect >= warn:
        level = max(level, 1)
        reasons.append(f"{eff_name} {effect:.4f} >= {warn} (warning band)")
    significant = bool(p_adjusted < policy.alpha) if not np.isnan(p_adjusted) else False
    sig = f"adjusted p {p_adjusted:.3g} {'<' if significant else '>='} alpha {policy.alpha}"
    if level == 0:
        return "stable", (f"no effect size reaches a band; {sig}",)
    if policy.require_significance and not significant:
        return "stable", (*reasons, f"not significant: {sig}")
    return TIERS[level], (*reasons, sig)
