"""At most one champion, whatever the concurrency: 8 promoters race over 100 rounds."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import exc, func, select

from charter.errors import Conflict
from charter.registry.service import Registry
from charter.storage.schema import model_aliases, model_versions

from helpers import approved_version, create_model

PROMOTERS = 8
ROUNDS = 100


def test_racing_promoters_leave_exactly_one_champion(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    for seed in range(PROMOTERS + 1):
        approved_version(registry, people.dev, people.val, people.app, seed=seed)
    registry.set_alias(people.app, "pd-model", 1, "champion", expected=None)
    barrier = threading.Barrier(PROMOTERS)
    holder = 1

    def promote(candidate: int, seen: int) -> str:
        barrier.wait()
        try:
            registry.set_alias(people.app, "pd-model", candidate, "champion", expected=seen)
            return "won"
        except Conflict as e:
            assert "another change came first" in e.message and e.remedy
            return "conflict"

    wins_per_round = []
    with ThreadPoolExecutor(PROMOTERS) as pool:
        for _ in range(ROUNDS):
            seen = holder
            candidates = [v for v in range(1, PROMOTERS + 2) if v != seen]
            outcomes = list(pool.map(promote, candidates, [seen] * PROMOTERS))
            wins_per_round.append(outcomes.count("won"))
            assert outcomes.count("won") + outcomes.count("conflict") == PROMOTERS
            with registry.db.read() as conn:
                champions = conn.execute(
                    select(func.count())
                    .select_from(model_aliases)
                    .where(model_aliases.c.alias == "champion")
                ).scalar()
            assert champions == 1
            holder = registry.get_model("pd-model").champion_version
            assert holder != seen
    assert wins_per_round == [1] * ROUNDS
    assert len(registry.audit_log(action="alias.set")) == ROUNDS + 1
    assert registry.verify_audit().ok


def test_the_database_itself_refuses_a_second_champion(registry: Registry, people) -> None:
    """Even code that skips the service cannot give a model two champions."""
    create_model(registry, people.dev)
    approved_version(registry, people.dev, people.val, people.app, seed=0)
    approved_version(registry, people.dev, people.val, people.app, seed=1)
    registry.set_alias(people.app, "pd-model", 1, "champion")
    with registry.db.read() as conn:
        row = conn.execute(select(model_aliases)).one()
        v2 = conn.execute(select(model_versions.c.id).where(model_versions.c.version == 2)).scalar()
    with pytest.raises(exc.IntegrityError), registry.db.engine.begin() as conn:
        conn.execute(model_aliases.insert().values(dict(row._mapping, version_id=v2)))
