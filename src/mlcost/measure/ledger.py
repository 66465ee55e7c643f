"""The run ledger: every measured run, in any SQL database SQLAlchemy speaks to (SQLite by default).

Location, first match wins: the ``url`` argument (``--ledger``), the ``MLCOST_LEDGER`` environment
variable, ``platformdirs.user_data_dir("mlcost")/ledger.db``. A plain filesystem path means SQLite.

Each method is one transaction. On SQLite the ledger uses WAL journaling, a 30 s busy timeout and
``BEGIN IMMEDIATE`` write transactions (so concurrent writers queue instead of failing), and retries a
transaction that still meets "database is locked".

Stale runs: a process killed mid-run (SIGKILL, OOM killer, power loss) leaves its run ``running``. Each
record stores ``host`` and ``pid``; :meth:`Ledger.liveness` reports ``dead`` when the host is this
machine and that process no longer exists (or the pid now belongs to a process started after the run),
and listings show such runs as ``interrupted?``. :meth:`Ledger.mark_stale` turns them into
``interrupted`` for good — on this host by pid, on other hosts when the last heartbeat
(``heartbeat_at``, refreshed by every ``update_metrics``) is older than ``older_than_s``.
See docs/ledger.md.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError, SQLAlchemyError

from mlcost.errors import LedgerError
from mlcost.measure.record import FINAL_STATUSES, RUN_STATUSES, RunRecord, json_safe, utc_now_iso

#: 1: first schema; 2: ``runs.dry_run`` (added to older ledgers in place when they are opened).
SCHEMA_VERSION = 2
ENV_VAR = "MLCOST_LEDGER"
#: SQLite busy timeout: how long a writer waits for another one. Units: ms.
BUSY_TIMEOUT_MS = 30_000
_RETRIES = 8
#: How long a transaction keeps reconnecting to a database server that went away. Units: s.
RECONNECT_S = 30.0

Liveness = Literal["alive", "dead", "unknown", "finished"]
T = TypeVar("T")

metadata = sa.MetaData()

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("started_at", sa.String(40), nullable=False, index=True),
    sa.Column("finished_at", sa.String(40)),
    sa.Column("heartbeat_at", sa.String(40)),
    sa.Column("model", sa.String(300), nullable=False, index=True),
    sa.Column("strategy", sa.String(300), nullable=False),
    sa.Column("device", sa.String(100), nullable=False),
    sa.Column("world_size", sa.Integer, nullable=False),
    sa.Column("host", sa.String(255)),
    sa.Column("pid", sa.Integer),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("predicted", sa.JSON, nullable=False),
    sa.Column("provenance", sa.JSON, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false(), index=True),
)

schema_version_table = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.String(40), nullable=False),
)

_COLUMNS = [c.name for c in runs_table.columns]


class UnknownRunError(LedgerError):
    """No run (or more than one run) matches an id prefix."""


def default_ledger_path() -> Path:
    """``platformdirs.user_data_dir("mlcost")/ledger.db``."""
    import platformdirs

    return Path(platformdirs.user_data_dir("mlcost")) / "ledger.db"


def resolve_url(url: str | os.PathLike[str] | None = None) -> str:
    """The SQLAlchemy URL for ``url`` / ``$MLCOST_LEDGER`` / the default path (a plain path → SQLite)."""
    raw = os.fspath(url) if url is not None else os.environ.get(ENV_VAR) or None
    if raw is None:
        raw = str(default_ledger_path())
    if "://" in raw:
        return raw
    return f"sqlite:///{Path(raw).expanduser().resolve()}"


def _is_memory(url: sa.URL) -> bool:
    """An SQLite database that lives in this process's memory (``sqlite://``, ``sqlite:///:memory:``, and
    with ``uri=true`` ``file::memory:`` or ``mode=memory``): gone when the process exits."""
    if url.get_backend_name() != "sqlite":
        return False
    db = url.database or ""
    uri = str(url.query.get("uri", "")).lower() == "true"  # only then is "file:..." an SQLite URI
    return db in ("", ":memory:") or (
        uri and (db.startswith("file::memory:") or url.query.get("mode") == "memory")
    )


def _sqlite_path(url: sa.URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or _is_memory(url):
        return None
    return Path(url.database or "")


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN IMMEDIATE
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.close()


def _on_sqlite_read(dbapi_conn: Any, _record: Any) -> None:
    """A reader: no WAL switch (that writes the file header), just the busy timeout."""
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.close()


def _on_sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


_DISCONNECT_TEXT = (
    "connection refused",
    "could not connect",
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "connection to server",
    "the database system is shutting down",
    "the database system is starting up",
    "consuming input failed",
    "ssl syscall error",
    "no connection to the server",
)


def _is_disconnect(exc: BaseException) -> bool:
    """The database server went away (or is not back yet): worth retrying on a new connection."""
    if getattr(exc, "connection_invalidated", False):
        return True
    text = str(getattr(exc, "orig", None) or exc).lower()
    return any(t in text for t in _DISCONNECT_TEXT)


def _is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text or "deadlock" in text


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class Ledger:
    """Run records in a SQL database. See the module docstring for location, concurrency and stale runs.

    ``read_only=True`` (``mlcost runs``, ``runs show``): never creates a database file, directory or
    schema; a ledger that does not exist yet reads as empty. ``persistent=True`` (every command that
    records runs): refuses an in-memory SQLite URL, whose runs vanish when the process exits.

    Raises:
        LedgerError: bad URL, missing driver, unwritable location, in-memory database where runs must
            persist, or a corrupt database file; the message names the location and how to fix it.
    """

    def __init__(
        self, url: str | os.PathLike[str] | None = None, *, read_only: bool = False, persistent: bool = False
    ) -> None:
        self.url = resolve_url(url)
        try:
            parsed = sa.make_url(self.url)
        except (ArgumentError, ValueError) as exc:
            raise LedgerError(
                f"cannot parse ledger URL {self.url!r}",
                hint="give a path or a SQLAlchemy URL such as sqlite:///runs.db or postgresql+psycopg://user@host/db",
            ) from exc
        if persistent and _is_memory(parsed):
            raise LedgerError(
                f"the ledger {self.url!r} is an in-memory SQLite database: the run would be lost at exit",
                hint=f"pass --ledger or set {ENV_VAR} to a file path or a database URL",
            )
        self.read_only = read_only
        #: How long a write waits for a database server that went away to come back. Units: s.
        self.reconnect_s = RECONNECT_S
        self.path = _sqlite_path(parsed)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        #: True when a read-only ledger has no database (file) yet: every read is empty, nothing is created.
        self.missing = read_only and self.path is not None and not self.path.exists()
        if self.path is not None and not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(
                    f"cannot create the ledger directory {self.path.parent} ({exc.strerror})",
                    hint=f"set {ENV_VAR} or pass --ledger with a writable path",
                ) from exc
        try:
            kwargs: dict[str, Any] = {}
            if self.is_sqlite:
                kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1e3}
            else:  # a server: test pooled connections before use, so a restarted server is reconnected to
                kwargs["pool_pre_ping"] = True
            self.engine: Engine = sa.create_engine(parsed, **kwargs)
        except (NoSuchModuleError, ImportError) as exc:
            raise LedgerError(
                f"no database driver for ledger URL {parsed.render_as_string(hide_password=True)} ({exc})",
                hint="install the driver (e.g. pip install 'psycopg[binary]' for postgresql+psycopg://)",
            ) from exc
        except (ArgumentError, SQLAlchemyError) as exc:
            raise LedgerError(f"cannot open ledger {self.location} ({exc})", hint="check the URL") from exc
        if self.is_sqlite:
            event.listen(self.engine, "connect", _on_sqlite_connect if not read_only else _on_sqlite_read)
            event.listen(self.engine, "begin", _on_sqlite_begin)
        if self.missing:
            return
        if read_only:
            self.missing = not self._tx(lambda conn: sa.inspect(conn).has_table("runs"), "opening the ledger")
            if not self.missing:
                self._migrate()
            return
        self._create()

    # ---------------------------------------------------------------- plumbing
    @property
    def location(self) -> str:
        """The file path for SQLite, else the URL without password."""
        if self.path is not None:
            return str(self.path)
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def _error(self, exc: BaseException, doing: str) -> LedgerError:
        text = str(getattr(exc, "orig", None) or exc)
        if (isinstance(exc, DatabaseError) and "not a database" in text) or "malformed" in text:
            return LedgerError(
                f"the ledger {self.location} is corrupt ({text})",
                hint=f"move it aside (mv {self.location} {self.location}.bad) and mlcost starts a new one, "
                f"or point {ENV_VAR}/--ledger elsewhere",
            )
        if "readonly" in text or "unable to open" in text or "permission" in text.lower():
            return LedgerError(
                f"cannot write the ledger {self.location} while {doing} ({text})",
                hint=f"make it writable, or set {ENV_VAR} / pass --ledger with a writable location",
            )
        return LedgerError(
            f"ledger {self.location}: {doing} failed ({text})", hint="check the database URL and server"
        )

    def _tx(self, fn: Callable[[Connection], T], doing: str) -> T:
        """Run ``fn`` in one transaction, retrying when the database stays locked, and, for a database
        server that went away, reconnecting for up to :attr:`reconnect_s` seconds before giving up with
        a LedgerError that says so. A transaction either commits whole or not at all: a retry never
        leaves a partial row."""
        attempt = 0
        deadline: float | None = None
        while True:
            try:
                with self.engine.begin() as conn:
                    return fn(conn)
            except OperationalError as exc:
                if _is_locked(exc) and attempt < _RETRIES - 1:
                    time.sleep(0.05 * 2**attempt * (0.5 + random.random()))
                    attempt += 1
                    continue
                if not self.is_sqlite and _is_disconnect(exc):
                    now = time.monotonic()
                    deadline = deadline if deadline is not None else now + self.reconnect_s
                    if now < deadline:
                        self.engine.dispose()  # drop dead pooled connections
                        time.sleep(min(1.0, 0.1 * 2**attempt))
                        attempt += 1
                        continue
                    raise LedgerError(
                        f"cannot reach the ledger database {self.location} while {doing}; "
                        f"retried for {self.reconnect_s:g} s",
                        hint=f"check the server is running, or set {ENV_VAR}/--ledger to another ledger",
                    ) from exc
                raise self._error(exc, doing) from exc
            except DatabaseError as exc:
                raise self._error(exc, doing) from exc

    def _migrate(self) -> None:
        """Bring an older ledger's ``runs`` table up to :data:`SCHEMA_VERSION` (add ``dry_run``)."""

        def migrate(conn: Connection) -> None:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
            if "dry_run" not in columns:
                conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN dry_run BOOLEAN NOT NULL DEFAULT FALSE")
                conn.execute(
                    schema_version_table.insert().values(version=SCHEMA_VERSION, created_at=utc_now_iso())
                )

        needs = self._tx(
            lambda conn: "dry_run" not in {c["name"] for c in sa.inspect(conn).get_columns("runs")},
            "reading the schema",
        )
        if needs:
            self._tx(migrate, "migrating the schema")

    def _create(self) -> None:
        def create(conn: Connection) -> None:
            metadata.create_all(conn)
            found = conn.execute(sa.select(sa.func.max(schema_version_table.c.version))).scalar()
            if found is None:
                conn.execute(
                    schema_version_table.insert().values(version=SCHEMA_VERSION, created_at=utc_now_iso())
                )
            elif found > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger {self.location} has schema version {found}, newer than this mlcost ({SCHEMA_VERSION})",
                    hint="upgrade mlcost, or use another ledger",
                )

        self._tx(create, "creating the schema")
        self._migrate()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _row_values(record: RunRecord) -> dict[str, Any]:
        return record.to_dict()

    @staticmethod
    def _to_record(row: Any) -> RunRecord:
        return RunRecord.from_dict(dict(row._mapping))

    def _resolve(self, conn: Connection, run_id: str) -> str:
        prefix = run_id.strip().lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            raise UnknownRunError(
                f"{run_id!r} is not a run id", hint="run ids are hex; list them with 'mlcost runs'"
            )
        matches = (
            conn.execute(
                sa.select(runs_table.c.run_id).where(runs_table.c.run_id.startswith(prefix)).limit(6)
            )
            .scalars()
            .all()
        )
        if len(matches) == 1:
            return str(matches[0])
        if not matches:
            recent = conn.execute(
                sa.select(runs_table.c.run_id).order_by(runs_table.c.started_at.desc()).limit(5)
            ).scalars()
            ids = ", ".join(r[:8] for r in recent)
            raise UnknownRunError(
                f"no run {run_id!r} in the ledger {self.location}",
                hint=f"recent runs: {ids}" if ids else "the ledger is empty",
            )
        raise UnknownRunError(
            f"run id prefix {run_id!r} is ambiguous",
            hint=f"matches {', '.join(m[:12] for m in matches[:5])}{', ...' if len(matches) > 5 else ''}; give more digits",
        )

    # ---------------------------------------------------------------- API
    def start_run(self, record: RunRecord) -> str:
        """Insert ``record`` with status ``running``; returns its run id."""
        # a dry run is marked even when its producer set only config["dry_run"] (older runners)
        dry = record.dry_run or bool(record.config.get("dry_run"))
        values = self._row_values(record.replace(status="running", heartbeat_at=utc_now_iso(), dry_run=dry))
        self._tx(lambda conn: conn.execute(runs_table.insert().values(**values)), "starting a run")
        return record.run_id

    def resolve(self, run_id: str) -> str:
        """The full run id for a unique prefix."""
        return self._tx(lambda conn: self._resolve(conn, run_id), "looking up a run")

    def update_metrics(self, run_id: str, metrics: dict[str, Any]) -> None:
        """Merge ``metrics`` into the run's metrics (a checkpoint during the run) and refresh its heartbeat."""
        new = json_safe(metrics)

        def update(conn: Connection) -> None:
            full = self._resolve(conn, run_id)
            current = conn.execute(
                sa.select(runs_table.c.metrics).where(runs_table.c.run_id == full).with_for_update()
            ).scalar_one()
            conn.execute(
                runs_table.update()
                .where(runs_table.c.run_id == full)
                .values(metrics={**(current or {}), **new}, heartbeat_at=utc_now_iso())
            )

        self._tx(update, "updating metrics")

    def finish_run(
        self, run_id: str, status: str, metrics: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        """Set the final ``status`` (one of completed, failed, oom, diverged, interrupted), merge ``metrics``
        and record ``error`` and the finish time."""
        if status not in FINAL_STATUSES:
            raise LedgerError(
                f"cannot finish a run with status {status!r}", hint=f"use one of {', '.join(FINAL_STATUSES)}"
            )
        new = json_safe(metrics or {})

        def finish(conn: Connection) -> None:
            full = self._resolve(conn, run_id)
            current = conn.execute(
                sa.select(runs_table.c.metrics).where(runs_table.c.run_id == full).with_for_update()
            ).scalar_one()
            now = utc_now_iso()
            conn.execute(
                runs_table.update()
                .where(runs_table.c.run_id == full)
                .values(
                    status=status,
                    metrics={**(current or {}), **new},
                    error=error,
                    finished_at=now,
                    heartbeat_at=now,
                )
            )

        self._tx(finish, "finishing a run")

    def get(self, run_id: str) -> RunRecord:
        """The run whose id is ``run_id`` or starts with it (like git short ids)."""
        if self.missing:
            raise UnknownRunError(
                f"no run {run_id!r}: the ledger {self.location} does not exist yet",
                hint=f"runs are recorded by mlcost measure; pass --ledger or set {ENV_VAR} to read another ledger",
            )

        def get(conn: Connection) -> RunRecord:
            full = self._resolve(conn, run_id)
            return self._to_record(
                conn.execute(sa.select(runs_table).where(runs_table.c.run_id == full)).one()
            )

        return self._tx(get, "reading a run")

    def list_runs(
        self,
        limit: int | None = 50,
        status: str | None = None,
        model: str | None = None,
        kind: str | None = None,
        include_dry_run: bool = False,
    ) -> list[RunRecord]:
        """Most recent first. ``status``/``kind`` match exactly; ``model`` matches exactly or as a substring.
        Dry runs (replayed readings, not measurements) only with ``include_dry_run``."""
        if status is not None and status not in RUN_STATUSES:
            raise LedgerError(f"unknown status {status!r}", hint=f"use one of {', '.join(RUN_STATUSES)}")
        if self.missing:
            return []
        query = sa.select(runs_table).order_by(runs_table.c.started_at.desc())
        if not include_dry_run:
            query = query.where(runs_table.c.dry_run == sa.false())
        if status is not None:
            query = query.where(runs_table.c.status == status)
        if kind is not None:
            query = query.where(runs_table.c.kind == kind)
        if model is not None:
            query = query.where(runs_table.c.model.contains(model, autoescape=True))
        if limit is not None:
            query = query.limit(limit)
        return self._tx(lambda conn: [self._to_record(r) for r in conn.execute(query)], "listing runs")

    def count(self) -> int:
        if self.missing:
            return 0
        return int(
            self._tx(
                lambda conn: conn.execute(sa.select(sa.func.count()).select_from(runs_table)).scalar_one(),
                "counting runs",
            )
        )

    def delete(self, run_id: str) -> str:
        """Delete one run; returns its full id."""

        def delete(conn: Connection) -> str:
            full = self._resolve(conn, run_id)
            conn.execute(runs_table.delete().where(runs_table.c.run_id == full))
            return full

        return self._tx(delete, "deleting a run")

    # ---------------------------------------------------------------- stale runs
    @staticmethod
    def liveness(record: RunRecord) -> Liveness:
        """``finished``; ``alive``/``dead`` for a running run on this host (by pid and process start time);
        ``unknown`` for a running run on another host."""
        if record.status != "running":
            return "finished"
        if record.host != socket.gethostname() or record.pid is None:
            return "unknown"
        import psutil

        try:
            proc = psutil.Process(record.pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return "dead"
            created = proc.create_time()
        except psutil.NoSuchProcess:
            return "dead"
        except psutil.Error:
            return "unknown"
        started = _parse_iso(record.started_at)
        if started is not None and created > started.timestamp() + 1.0:
            return "dead"  # the pid was reused by a process started after the run
        return "alive"

    @classmethod
    def display_status(cls, record: RunRecord) -> str:
        """The status, or ``interrupted?`` for a running run whose process is gone."""
        if record.status == "running" and cls.liveness(record) == "dead":
            return "interrupted?"
        return record.status

    def mark_stale(self, run_id: str | None = None, older_than_s: float | None = None) -> list[str]:
        """Mark ``running`` runs whose process is gone as ``interrupted``; returns their ids.

        A run on this host is stale when its process no longer exists. With ``older_than_s``, a run on
        another host (whose process cannot be checked) is stale when its last heartbeat is older than that
        (Units: s). ``run_id`` limits the
        check to one run.
        """
        candidates = (
            [self.get(run_id)]
            if run_id
            else self.list_runs(limit=None, status="running", include_dry_run=True)
        )
        now = datetime.now(timezone.utc)
        stale: list[str] = []
        for rec in candidates:
            if rec.status != "running":
                continue
            reason = None
            alive = self.liveness(rec)
            if alive == "dead":
                reason = f"process {rec.pid} on {rec.host} is gone"
            elif alive == "unknown" and older_than_s is not None:
                beat = _parse_iso(rec.heartbeat_at) or _parse_iso(rec.started_at)
                if beat is not None and (now - beat).total_seconds() > older_than_s:
                    reason = f"no heartbeat for {(now - beat).total_seconds():.0f} s (> {older_than_s:g} s)"
            if reason is None:
                continue

            def mark(conn: Connection, rid: str = rec.run_id, why: str = reason) -> None:
                conn.execute(
                    runs_table.update()
                    .where(runs_table.c.run_id == rid, runs_table.c.status == "running")
                    .values(status="interrupted", finished_at=utc_now_iso(), error=f"marked stale: {why}")
                )

            self._tx(mark, "marking stale runs")
            stale.append(rec.run_id)
        return stale
