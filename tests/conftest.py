"""Shared fixtures. The database backend is SQLite in a temporary directory, or PostgreSQL when
``CHARTER_TEST_DATABASE_URL`` is set (each test then gets a schema of its own, dropped after)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from charter.clock import ManualClock
from charter.entities import Actor
from charter.registry.service import Registry
from charter.storage.artifacts import ArtifactStore
from charter.storage.db import Database

from helpers import DemoRun

PG_URL = os.environ.get("CHARTER_TEST_DATABASE_URL")
BACKEND = "postgresql" if PG_URL else "sqlite"


def _with_search_path(url: str, schema: str) -> str:
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    if PG_URL is None:
        yield f"sqlite:///{tmp_path / 'charter.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _with_search_path(PG_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url, pool_size=12)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC), step=timedelta(seconds=1))


@pytest.fixture
def registry(database: Database, tmp_path: Path, clock: ManualClock) -> Registry:
    return Registry(database, ArtifactStore(tmp_path / "artifacts"), clock=clock)


@dataclass(frozen=True)
class People:
    admin: Actor
    dev: Actor
    val: Actor
    app: Actor
    auditor: Actor
    automation: Actor
    admin_token: str


@pytest.fixture
def people(registry: Registry) -> People:
    ident = registry.identity
    _, token = ident.bootstrap_admin("ada")
    admin = ident.actor("ada")
    ident.create_user(admin, "dana", ["developer"])
    ident.create_user(admin, "victor", ["validator"])
    ident.create_user(admin, "petra", ["approver"])
    ident.create_user(admin, "otto", ["auditor"])
    return People(
        admin=admin,
        dev=ident.actor("dana"),
        val=ident.actor("victor"),
        app=ident.actor("petra"),
        auditor=ident.actor("otto"),
        automation=ident.actor("charter-automation"),
        admin_token=token,
    )


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The demo's store for the demo's own tests and the dashboard's end-to-end tests. Both mark
    their modules ``xdist_group("demo")``, so with ``--dist loadgroup`` it runs once."""
    from typer.testing import CliRunner

    from charter.cli import app

    home = tmp_path_factory.mktemp("demo")
    env = {"CHARTER_HOME": str(home), "CHARTER_DATABASE_URL": "", "COLUMNS": "200"}
    r = CliRunner().invoke(app, ["demo"], env=env)
    assert r.exit_code == 0, r.stdout + r.stderr
    return DemoRun(r.stdout, home)
