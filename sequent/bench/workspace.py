"""The throwaway workspace: its database and var folder, and the environment of every child.

Nothing here imports Django settings, so the user's database is never opened: the
children get ``DATABASE_URL`` and ``SEQUENT_VAR_DIR`` pointing at the workspace.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


class Workspace:
    """A temporary folder (var files, CSV, SQLite database) and, on PostgreSQL, a database
    ``sequent_bench_<pid>`` on the server of *admin_url*. Use it as a context manager: it
    is removed on the way out, after a failure or Ctrl-C too."""

    def __init__(self, database: str, admin_url: str = DEFAULT_ADMIN_URL) -> None:
        if database not in ("sqlite", "postgres"):
            raise ValueError(f"unknown database {database!r}")
        self.database = database
        self.admin_url = admin_url
        self.dir = Path(tempfile.mkdtemp(prefix="sequent-bench-"))
        self.db_name = f"sequent_bench_{os.getpid()}"
        self.created = False

    @property
    def database_url(self) -> str:
        """The workspace database, as a URL for ``DATABASE_URL``."""
        if self.database == "sqlite":
            return f"sqlite:///{self.dir / 'bench.sqlite3'}"
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{self.db_name}"))

    def env(self) -> dict[str, str]:
        """The environment of a child process: the workspace, never the user's data."""
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            SEQUENT_VAR_DIR=str(self.dir / "var"),
            DJANGO_SETTINGS_MODULE="sequent.settings",
            SECRET_KEY="sequent-bench-" + self.db_name,
            SEQUENT_BASE_URL="http://127.0.0.1:8000",
            SEQUENT_CATCHER="0",
            DEBUG="0",
            LOG_LEVEL="ERROR",
            PYTHONUNBUFFERED="1",
        )
        env.pop("DB_CONN_MAX_AGE", None)
        return env

    def __enter__(self) -> Workspace:
        if self.database == "postgres":
            try:
                with psycopg.connect(self.admin_url, autocommit=True) as conn:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))
            except BaseException:
                self.close()
                raise
            self.created = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the database (if created) and remove the folder."""
        if self.created:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.db_name))
                )
            self.created = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def server_version(self) -> str:
        """The database server's version, for the report."""
        if self.database == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        with psycopg.connect(self.admin_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0] if row else '?'}"
