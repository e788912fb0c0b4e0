"""Schema migrations for the job database: named functions applied once, in order.

Each migration runs in its own transaction together with its row in `_migrations`, so a
crash mid-migration leaves the database at the previous version, never in between.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    """Register `fn` as the next migration, named after the function."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_jobs_and_events(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, heavy INTEGER NOT NULL DEFAULT 0,
            params TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL, started_at REAL, finished_at REAL,
            progress_current REAL, progress_total REAL, progress_unit TEXT, progress_message TEXT,
            result TEXT, error TEXT, worker_pid INTEGER, heartbeat_at REAL,
            cancel_requested_at REAL, attempt INTEGER NOT NULL DEFAULT 0
        )"""
    )
    conn.execute("CREATE INDEX jobs_status ON jobs(status, created_at)")
    conn.execute(
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL REFERENCES jobs(id),
            at REAL NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX events_job ON events(job_id, id)")


@migration
def m002_models_registry(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE models (
            name TEXT PRIMARY KEY, job_id TEXT, base_model TEXT, dataset TEXT, method TEXT,
            created_at REAL NOT NULL, path TEXT NOT NULL, metrics TEXT NOT NULL DEFAULT '{}'
        )"""
    )


@migration
def m003_job_resources(conn: sqlite3.Connection) -> None:
    """What each job writes and reads (JSON lists of resource names), and why a queued job waits."""
    conn.execute("ALTER TABLE jobs ADD COLUMN writes TEXT NOT NULL DEFAULT '[]'")
    conn.execute("ALTER TABLE jobs ADD COLUMN reads TEXT NOT NULL DEFAULT '[]'")
    conn.execute("ALTER TABLE jobs ADD COLUMN waiting_for TEXT")
    conn.execute("ALTER TABLE jobs ADD COLUMN wait_reason TEXT")


@migration
def m004_model_aliases(conn: sqlite3.Connection) -> None:
    """Model aliases (`current`, any name) -> a model name; see tools/training/registry.py."""
    conn.execute("CREATE TABLE model_aliases (alias TEXT PRIMARY KEY, model_name TEXT NOT NULL, "
                 "updated_at REAL NOT NULL)")
    conn.execute("CREATE INDEX model_aliases_model ON model_aliases(model_name)")


@migration
def m005_job_dependencies(conn: sqlite3.Connection) -> None:
    """A job may wait for another (`depends_on`: starts once it succeeded, ends with it otherwise);
    the jobs of one retrain share a `chain` id (the first job's id), cancelled together."""
    conn.execute("ALTER TABLE jobs ADD COLUMN depends_on TEXT")
    conn.execute("ALTER TABLE jobs ADD COLUMN chain TEXT")
    conn.execute("CREATE INDEX jobs_depends_on ON jobs(depends_on)")


def applied(conn: sqlite3.Connection) -> list[str]:
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    return [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]


def pending(conn: sqlite3.Connection) -> list[str]:
    done = set(applied(conn))
    return [name for name, _ in MIGRATIONS if name not in done]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations; safe when several processes start at once (BEGIN IMMEDIATE)."""
    ran: list[str] = []
    for name, fn in MIGRATIONS:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if name in set(applied(conn)):
                conn.execute("COMMIT")
                continue
            fn(conn)
            conn.execute("INSERT INTO _migrations(name, applied_at) VALUES (?, ?)", (name, time.time()))
            conn.execute("COMMIT")
            ran.append(name)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return ran
