"""Where Charter keeps its state, read from the environment.

``CHARTER_HOME`` (default ``./.charter``) holds the SQLite database and the artifact store.
``CHARTER_DATABASE_URL`` points at another database (``postgresql+psycopg://...``); artifacts stay
under ``CHARTER_HOME/artifacts``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    artifact_root: Path

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        home = Path(e.get("CHARTER_HOME") or ".charter").expanduser().resolve()
        url = e.get("CHARTER_DATABASE_URL") or f"sqlite:///{home / 'charter.db'}"
        return cls(home=home, database_url=url, artifact_root=home / "artifacts")

    @classmethod
    def for_home(cls, home: Path | str, database_url: str | None = None) -> Settings:
        h = Path(home).expanduser().resolve()
        return cls(
            home=h,
            database_url=database_url or f"sqlite:///{h / 'charter.db'}",
            artifact_root=h / "artifacts",
        )
