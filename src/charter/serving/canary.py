"""Canary rollouts driven by guardrails measured on the decision log.

``observe`` reads one window of the log (since the last step) and summarises the canary against
the champion over the same window (or, when the champion answered fewer than 200 applicants in
it, as at a 100% step, against the champion's 200 most recent decisions): decisions, scoring
errors, p99 scoring latency, the PSI of the canary's scores against the champion's (bands on
the champion's score deciles, the 1e-4 empty band rule), and both approval rates.

``tick`` hands that observation to ``Registry.canary_step``, which applies the pure state
machine of ``serving.routing`` (hold, advance, promote, roll back) as the automation identity,
in one audited transaction. The service runs ``tick`` for every running canary on a timer; ticks
from several workers serialise on the registry's write lock and each consumes its own window,
so none is counted twice.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import and_, func, select

from charter.clock import iso, parse_iso
from charter.registry.service import Registry
from charter.serving.routing import GuardrailObservation
from charter.stats.classification import score_band_psi
from charter.storage.db import Database
from charter.storage.schema import decisions, scoring_errors

MIN_ROWS_FOR_PSI = 10
CHAMPION_LOOKBACK = 200  # champion decisions the canary is compared with, at least


def observe(
    db: Database, name: str, version: int, since: datetime, until: datetime
) -> GuardrailObservation:
    lo, hi = iso(since), iso(until)
    window = and_(
        decisions.c.model_name == name, decisions.c.created_at >= lo, decisions.c.created_at < hi
    )
    with db.read() as conn:
        canary = conn.execute(
            select(decisions.c.score, decisions.c.decision, decisions.c.latency_ms).where(
                window, decisions.c.variant == "canary", decisions.c.version == version
            )
        ).all()
        champion = conn.execute(
            select(decisions.c.score, decisions.c.decision).where(
                window, decisions.c.variant == "champion"
            )
        ).all()
        if len(champion) < CHAMPION_LOOKBACK:
            # At a large canary share the champion answers few applicants, at 100% none: compare
            # with its most recent decisions instead.
            champion = conn.execute(
                select(decisions.c.score, decisions.c.decision)
                .where(
                    decisions.c.model_name == name,
                    decisions.c.variant == "champion",
                    decisions.c.created_at < hi,
                )
                .order_by(decisions.c.created_at.desc())
                .limit(CHAMPION_LOOKBACK)
            ).all()
        errors = int(
            conn.execute(
                select(func.count())
                .select_from(scoring_errors)
                .where(
                    scoring_errors.c.model_name == name,
                    scoring_errors.c.version == version,
                    scoring_errors.c.variant == "canary",
                    scoring_errors.c.created_at >= lo,
                    scoring_errors.c.created_at < hi,
                )
            ).scalar()
            or 0
        )
    c_scores = np.array([r.score for r in canary], dtype=np.float64)
    h_scores = np.array([r.score for r in champion], dtype=np.float64)
    psi = (
        float(score_band_psi(h_scores, c_scores))
        if c_scores.size >= MIN_ROWS_FOR_PSI and h_scores.size >= MIN_ROWS_FOR_PSI
        else 0.0
    )
    return GuardrailObservation(
        decisions=len(canary) + errors,
        errors=errors,
        latency_p99_ms=float(np.percentile([r.latency_ms for r in canary], 99)) if canary else 0.0,
        score_psi=psi,
        approval_rate_canary=(
            sum(r.decision == "approve" for r in canary) / len(canary) if canary else 0.0
        ),
        approval_rate_champion=(
            sum(r.decision == "approve" for r in champion) / len(champion) if champion else 0.0
        ),
    )


def tick(registry: Registry, name: str, now: datetime) -> tuple[str, dict[str, object]] | None:
    """One step of ``name``'s running canary, if it has one: (action, new state)."""
    c = registry.canary(name)
    if c is None or c["state"].get("status") != "running":
        return None
    obs = observe(registry.db, name, int(c["version"]), parse_iso(c["window_start"]), now)
    return registry.canary_step(name, obs, window_end=now)
