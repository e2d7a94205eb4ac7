"""The SQL database: engine set-up for SQLite and PostgreSQL, transactions and migrations.

Write transactions are serialised: on SQLite by ``BEGIN IMMEDIATE`` (one writer at a time, WAL
lets readers go on), on PostgreSQL by a transaction-scoped advisory lock. Registry writes are rare
and each appends to the single audit hash chain, which needs a total order anyway; the database's
own constraints (one row per model and alias, unique version numbers) are the second line that
holds even for code that forgot the lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url

from charter.errors import InvalidArgument, StoreNotInitialized, StoreUnavailable

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# An arbitrary constant that names Charter's registry write lock among PostgreSQL advisory locks.
_PG_WRITE_LOCK = 0x43484152  # "CHAR"


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None  # the package always ships at least one migration
    return head


class Database:
    """One SQL database holding Charter's state."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        try:
            parsed = make_url(url)
        except exc.ArgumentError as e:
            raise InvalidArgument(
                f"cannot parse database URL {url!r}",
                field="CHARTER_DATABASE_URL",
                remedy="use sqlite:///path/to/charter.db or postgresql+psycopg://user@host/db",
            ) from e
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise InvalidArgument(
                f"database backend {self.dialect!r} is not supported",
                field="CHARTER_DATABASE_URL",
                remedy="use SQLite (sqlite:///...) or PostgreSQL (postgresql+psycopg://...)",
            )
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                # If the folder cannot be made, connecting fails with a clear StoreUnavailable.
                with contextlib.suppress(OSError):
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            # A pool of file connections; each checkout is used by one thread at a time.
            self.engine: Engine = create_engine(
                url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=pool_size,
                connect_args={"timeout": 60, "check_same_thread": False},
            )
            _configure_sqlite(self.engine)
        else:
            if parsed.drivername == "postgresql":
                url = str(parsed.set(drivername="postgresql+psycopg"))
            self.engine = create_engine(
                url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot on SQLite, read committed on PG)."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except exc.OperationalError as e:
            raise _unavailable(e) from e

    @contextmanager
    def write(self, *, registry_lock: bool = True) -> Iterator[Connection]:
        """A write transaction: everything in it commits together or not at all.

        ``registry_lock`` serialises it with every other registry write (the audit chain needs a
        total order); the decision log, which appends to its own table, passes False.
        """
        try:
            with self.engine.connect() as conn:
                conn.execution_options(charter_write=True)
                with conn.begin():
                    if self.dialect == "postgresql" and registry_lock:
                        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_WRITE_LOCK})")
                    yield conn
        except exc.OperationalError as e:
            raise _unavailable(e) from e

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the SQLite database file without blocking writers."""
        if self.dialect != "sqlite":
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    # -- schema -------------------------------------------------------------------------------
    def current_revision(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except exc.OperationalError as e:
            raise _unavailable(e) from e

    def upgrade(self, target: str = "head") -> tuple[str | None, str | None]:
        """Create or migrate the schema (to the newest revision); returns (before, after)."""
        before = self.current_revision()
        cfg = _alembic_config()
        try:
            with self.engine.connect() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, target)
                conn.commit()
        except exc.OperationalError as e:
            raise _unavailable(e) from e
        return before, self.current_revision()

    def check_schema(self) -> None:
        current = self.current_revision()
        head = head_revision()
        if current != head:
            state = "has no Charter schema" if current is None else f"is at revision {current}"
            raise StoreNotInitialized(
                f"the database {self.safe_url} {state}; this Charter needs revision {head}",
                remedy="run `charter init` to create or migrate it",
            )

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the sqlite3 module) decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        # Checkpoints run off the commit path (Database.checkpoint, called by the decision log's
        # checkpointer thread, and SQLite's own when the last connection closes): inside a commit
        # a checkpoint stalls every request waiting on that group commit for tens of ms.
        cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("charter_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _unavailable(e: Exception) -> StoreUnavailable:
    return StoreUnavailable(
        f"the database cannot be used: {str(e).splitlines()[0]}",
        remedy="check CHARTER_DATABASE_URL / CHARTER_HOME and that the database server is running",
    )


def inserted_id(result: Any) -> int:
    """The primary key of the row an ``INSERT`` just wrote."""
    pk = result.inserted_primary_key
    if pk is None:  # pragma: no cover - only for statements that are not single-row inserts
        raise RuntimeError("the statement did not insert a row")
    return int(pk[0])
