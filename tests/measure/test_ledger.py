from __future__ import annotations

import multiprocessing as mp
import os
import signal
from pathlib import Path

import pytest

from mlcost.errors import LedgerError
from mlcost.measure.ledger import ENV_VAR, Ledger, UnknownRunError, resolve_url
from mlcost.measure.record import RunRecord
from tests.measure.pg_cluster import Cluster, NoPostgres, start_cluster

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster():  # type: ignore[no-untyped-def]
    """A throwaway PostgreSQL server for this test session ($MLCOST_TEST_POSTGRES_URL's server when CI
    started one; else one started here), or a skip that says why none can start."""
    given = os.environ.get("MLCOST_TEST_POSTGRES_URL")
    datadir = os.environ.get("MLCOST_TEST_POSTGRES_DIR")
    if given and datadir:
        import sqlalchemy as sa

        yield Cluster(Path(datadir), int(sa.make_url(given).port or 5432))
        return
    try:
        cluster = start_cluster()
    except NoPostgres as exc:
        pytest.skip(f"no PostgreSQL server can start here: {exc}")
    yield cluster
    cluster.destroy()


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger URL on each backend: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    cluster = request.getfixturevalue("pg_cluster")
    return str(cluster.create_database())


@pytest.fixture
def ledger(url: str):  # type: ignore[no-untyped-def]
    with Ledger(url) as led:
        yield led


def _rec(**kw) -> RunRecord:
    return RunRecord(**{"model": "gpt2-tiny", "strategy": "fp32", **kw})


def test_start_update_finish_get(ledger: Ledger) -> None:
    rec = _rec(config={"batch": 8, "nested": {"a": [1, 2.5, None]}}, predicted={"step_time_s": 0.2})
    run_id = ledger.start_run(rec)
    assert ledger.get(run_id).status == "running"
    ledger.update_metrics(run_id, {"steps_done": 5, "loss_last": 3.2})
    ledger.update_metrics(run_id[:8], {"steps_done": 10})
    ledger.finish_run(
        run_id, "completed", {"step_time_s": 0.21, "energy_j": 4.0, "energy_source": "estimated"}
    )
    got = ledger.get(run_id[:6])
    assert got.status == "completed" and got.finished_at is not None and got.error is None
    assert got.metrics == {
        "steps_done": 10,
        "loss_last": 3.2,
        "step_time_s": 0.21,
        "energy_j": 4.0,
        "energy_source": "estimated",
    }
    assert got.config == rec.config and got.predicted == rec.predicted  # JSON columns round-trip
    assert got.to_dict() | {"heartbeat_at": None} == ledger.get(run_id).to_dict() | {"heartbeat_at": None}


def test_list_filters_and_order(ledger: Ledger) -> None:
    ids = []
    for i, (model, kind) in enumerate(
        [("gpt2-tiny", "train"), ("llama-7b", "serve"), ("gpt2-small", "train")]
    ):
        rec = _rec(model=model, kind=kind, started_at=f"2025-01-0{i + 1}T00:00:00+00:00")
        ids.append(ledger.start_run(rec))
    ledger.finish_run(ids[0], "failed", error="boom")
    assert [r.run_id for r in ledger.list_runs()] == ids[::-1]
    assert [r.run_id for r in ledger.list_runs(limit=1)] == [ids[2]]
    assert [r.model for r in ledger.list_runs(model="gpt2")] == ["gpt2-small", "gpt2-tiny"]
    assert [r.run_id for r in ledger.list_runs(kind="serve")] == [ids[1]]
    failed = ledger.list_runs(status="failed")
    assert [r.error for r in failed] == ["boom"]
    with pytest.raises(LedgerError, match="status"):
        ledger.list_runs(status="done")


def test_prefix_ids_unknown_ambiguous_and_delete(ledger: Ledger) -> None:
    a = ledger.start_run(_rec(run_id="abc" + "0" * 29))
    ledger.start_run(_rec(run_id="abd" + "0" * 29))
    assert ledger.get("abc").run_id == a
    with pytest.raises(UnknownRunError, match="ambiguous"):
        ledger.get("ab")
    with pytest.raises(UnknownRunError, match="no run") as info:
        ledger.get("ffff")
    assert "abc00000" in (info.value.hint or "")
    with pytest.raises(UnknownRunError):
        ledger.get("not-hex")
    assert ledger.delete("abc") == a
    assert ledger.count() == 1
    with pytest.raises(LedgerError, match="finish"):
        ledger.finish_run("abd", "running")


def test_location_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.db"))
    assert resolve_url() == f"sqlite:///{tmp_path / 'env.db'}"
    assert resolve_url(tmp_path / "p.db") == f"sqlite:///{tmp_path / 'p.db'}"
    assert resolve_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    monkeypatch.delenv(ENV_VAR)
    assert resolve_url().endswith("ledger.db")
    with Ledger(tmp_path / "sub" / "plain.db") as led:  # plain path, parent created
        assert led.path == tmp_path / "sub" / "plain.db"
        assert led.engine.dialect.name == "sqlite"


def test_bad_urls_and_corrupt_file_raise_ledger_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="driver"):
        Ledger("nosuchdialect://x/y")
    with pytest.raises(LedgerError, match="cannot parse"):
        Ledger("postgresql+psycopg://u@h:notaport/db")
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="corrupt") as info:
        Ledger(bad)
    assert str(bad) in str(info.value) and "mv" in (info.value.hint or "")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LedgerError, match="directory"):
        Ledger(blocker / "ledger.db")


def _writer(url: str, worker: int, n: int) -> None:
    led = Ledger(url)
    for i in range(n):
        run_id = led.start_run(_rec(model=f"worker-{worker}", config={"i": i}))
        led.update_metrics(run_id, {"steps_done": i})
        led.finish_run(run_id, "completed", {"step_time_s": 0.01 * i})
    led.close()


def test_several_processes_write_at_once(url: str) -> None:
    Ledger(url).close()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(url, w, 20)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with Ledger(url) as led:
        runs = led.list_runs(limit=None)
        assert len(runs) == 80
        assert all(r.status == "completed" for r in runs)
        for w in range(4):
            assert len(led.list_runs(limit=None, model=f"worker-{w}")) == 20


def _crasher(url: str, queue) -> None:  # type: ignore[no-untyped-def]
    led = Ledger(url)
    run_id = led.start_run(_rec(model="doomed"))
    led.update_metrics(run_id, {"steps_done": 3})
    queue.put(run_id)
    signal.pause()


def test_sigkill_mid_run_leaves_a_readable_ledger_and_a_stale_run(url: str) -> None:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_crasher, args=(url, queue))
    proc.start()
    run_id = queue.get(timeout=30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    with Ledger(url) as led:
        rec = led.get(run_id)
        assert rec.status == "running" and rec.metrics == {"steps_done": 3}
        assert rec.pid == proc.pid
        assert led.liveness(rec) == "dead"
        assert led.display_status(rec) == "interrupted?"
        assert led.mark_stale() == [run_id]
        done = led.get(run_id)
        assert done.status == "interrupted" and "gone" in (done.error or "")
        assert led.mark_stale() == []


def test_live_runs_are_not_stale_but_silent_ones_can_be(ledger: Ledger) -> None:
    mine = ledger.start_run(_rec())
    assert ledger.liveness(ledger.get(mine)) == "alive"
    assert ledger.mark_stale() == []
    other = ledger.start_run(_rec(host="elsewhere", pid=1, started_at="2025-01-01T00:00:00+00:00"))
    assert ledger.liveness(ledger.get(other)) == "unknown"
    assert ledger.mark_stale(older_than_s=3600) == []  # heartbeat written at start_run, just now
    assert ledger.mark_stale(older_than_s=-1) == [other]  # a live process here is never stale
    assert ledger.get(other).status == "interrupted"
    assert ledger.get(mine).status == "running"


def test_pid_reused_by_a_later_process_counts_as_dead(ledger: Ledger) -> None:
    rec = _rec(pid=os.getpid(), started_at="2000-01-01T00:00:00+00:00")  # this process started later
    ledger.start_run(rec)
    assert ledger.liveness(ledger.get(rec.run_id)) == "dead"


def _burst(url: str, queue) -> None:  # type: ignore[no-untyped-def]
    led = Ledger(url)
    queue.put("ready")
    i = 0
    while True:  # write as fast as possible until killed
        run_id = led.start_run(_rec(model="burst", config={"i": i, "blob": "x" * 2000}))
        led.update_metrics(run_id, {"steps_done": i, "loss_last": 1.0 / (i + 1)})
        led.finish_run(run_id, "completed", {"step_time_s": 0.01})
        i += 1


def test_writer_killed_mid_write_leaves_no_partial_row(url: str) -> None:
    Ledger(url).close()
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_burst, args=(url, queue))
    proc.start()
    assert queue.get(timeout=30) == "ready"
    import time

    time.sleep(1.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    with Ledger(url) as led:
        runs = led.list_runs(limit=None)
        assert runs, "the writer wrote nothing before it was killed"
        for r in runs:  # every row is whole: a run row with its config, or not there at all
            assert r.config["blob"] == "x" * 2000 and isinstance(r.config["i"], int)
            if r.status == "completed":
                assert r.metrics["step_time_s"] == 0.01 and "steps_done" in r.metrics
        assert sum(r.status == "running" for r in runs) <= 1


# ------------------------------------------------------------------------------ the server goes away


def test_server_going_away_and_back_during_a_run_is_retried(pg_cluster: Cluster) -> None:
    import threading
    import time

    url = pg_cluster.create_database()
    with Ledger(url) as led:
        run_id = led.start_run(_rec(model="survivor"))
        pg_cluster.stop()
        restart = threading.Timer(2.0, pg_cluster.start)
        restart.start()
        t0 = time.monotonic()
        try:
            led.update_metrics(run_id, {"steps_done": 7})  # reconnects once the server is back
        finally:
            restart.join()
        assert time.monotonic() - t0 >= 1.5
        led.finish_run(run_id, "completed")
        got = led.get(run_id)
        assert got.status == "completed" and got.metrics == {"steps_done": 7}


def test_server_gone_for_good_fails_cleanly(pg_cluster: Cluster) -> None:
    url = pg_cluster.create_database()
    led = Ledger(url)
    run_id = led.start_run(_rec(model="orphan"))
    led.reconnect_s = 1.0
    pg_cluster.stop()
    try:
        with pytest.raises(LedgerError, match=r"cannot reach the ledger database .*retried for 1 s"):
            led.update_metrics(run_id, {"steps_done": 1})
    finally:
        pg_cluster.start()
    with Ledger(url) as again:  # nothing half-written: the run is as it was
        assert again.get(run_id).metrics == {}


# --------------------------------------------------------------------------------------- hygiene


def test_read_only_never_creates_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "none.db"
    with Ledger(path, read_only=True) as led:
        assert led.missing and led.list_runs() == [] and led.count() == 0
        with pytest.raises(UnknownRunError, match="does not exist yet"):
            led.get("abc")
    assert not path.exists() and not path.parent.exists()


@pytest.mark.parametrize(
    "memory", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:mem1?mode=memory&cache=shared&uri=true"]
)
def test_in_memory_sqlite_refused_where_runs_must_persist(memory: str) -> None:
    with pytest.raises(LedgerError, match=r"in-memory SQLite .*--ledger or set MLCOST_LEDGER"):
        Ledger(memory, persistent=True)
    if "uri=true" not in memory:
        Ledger(memory).close()  # fine for a throwaway ledger (tests, notebooks)


def test_dry_runs_are_marked_and_hidden_by_default(ledger: Ledger) -> None:
    real = ledger.start_run(_rec())
    dry = ledger.start_run(_rec(dry_run=True))
    legacy = ledger.start_run(_rec(config={"dry_run": True}))  # producers that only set the config key
    assert [r.run_id for r in ledger.list_runs()] == [real]
    assert {r.run_id for r in ledger.list_runs(include_dry_run=True)} == {real, dry, legacy}
    assert ledger.get(dry).dry_run and ledger.get(legacy).dry_run and not ledger.get(real).dry_run


def test_old_ledger_gets_the_dry_run_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:  # the schema of mlcost before dry_run (SCHEMA_VERSION 1)
        conn.execute(
            "CREATE TABLE runs (run_id VARCHAR(32) PRIMARY KEY, kind VARCHAR(16) NOT NULL, status VARCHAR(16) "
            "NOT NULL, started_at VARCHAR(40) NOT NULL, finished_at VARCHAR(40), heartbeat_at VARCHAR(40), "
            "model VARCHAR(300) NOT NULL, strategy VARCHAR(300) NOT NULL, device VARCHAR(100) NOT NULL, "
            "world_size INTEGER NOT NULL, host VARCHAR(255), pid INTEGER, config JSON NOT NULL, metrics JSON "
            "NOT NULL, predicted JSON NOT NULL, provenance JSON NOT NULL, error TEXT)"
        )
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, created_at VARCHAR(40) NOT NULL)"
        )
        conn.execute("INSERT INTO schema_version VALUES (1, '2025-01-01')")
        conn.execute(
            "INSERT INTO runs VALUES ('" + "c" * 32 + "', 'train', 'completed', '2025-01-01T00:00:00+00:00', "
            "NULL, NULL, 'gpt2', 'fp32', 'cpu', 1, 'h', 1, '{}', '{\"step_time_s\": 0.5}', '{}', '{}', NULL)"
        )
    with Ledger(path, read_only=True) as led:
        (old,) = led.list_runs()
        assert old.metrics == {"step_time_s": 0.5} and old.dry_run is False
    with sqlite3.connect(path) as conn:
        assert max(v for (v,) in conn.execute("select version from schema_version")) == 2
