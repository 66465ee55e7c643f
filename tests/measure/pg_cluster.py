"""A throwaway PostgreSQL cluster for the ledger tests (and CI): initdb in a temporary directory, a server
bound to 127.0.0.1 on a free port with a Unix socket in that directory, trust authentication, stopped and
deleted at the end. Uses the distribution's binaries (Debian: /usr/lib/postgresql/<version>/bin).

    python -m tests.measure.pg_cluster start    # prints "URL DATADIR"; the server keeps running
    python -m tests.measure.pg_cluster stop DATADIR

As root (CI containers) the server runs as the ``postgres`` user, which initdb requires.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


class NoPostgres(RuntimeError):
    """No PostgreSQL server can be started here (the reason is the message)."""


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for cand in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return cand
    raise NoPostgres(f"{name} not found (install the Debian package 'postgresql')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser") is None:
        raise NoPostgres("running as root without runuser: cannot start PostgreSQL as the postgres user")
    return ["runuser", "-u", "postgres", "--", *cmd]


@dataclass
class Cluster:
    datadir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str, timeout: float = 60) -> None:
        cmd = _as_server_user([_bin("pg_ctl"), "-D", str(self.datadir / "data"), *args])
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", opts, "-l", str(self.datadir / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def create_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):  # already stopped or never started
            self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)


def start_cluster() -> Cluster:
    """initdb + start; raises :class:`NoPostgres` with the reason when it cannot."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise NoPostgres("the psycopg driver is not installed (pip install 'mlcost[postgres]')") from exc
    initdb = _bin("initdb")
    _bin("pg_ctl")
    datadir = Path(tempfile.mkdtemp(prefix="mlcost-pg-"))
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres", "postgres")
    cmd = _as_server_user([initdb, "-D", str(datadir / "data"), "-A", "trust", "-U", "postgres", "--no-sync"])
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(datadir, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        raise NoPostgres(f"initdb failed: {exc} {detail.decode(errors='replace')[-300:]}") from exc
    for _attempt in range(3):  # another process may grab the free port between the probe and the bind
        cluster = Cluster(datadir, _free_port())
        try:
            cluster.start()
            return cluster
        except (subprocess.SubprocessError, OSError):
            time.sleep(0.5)
    log = (
        (datadir / "server.log").read_text(errors="replace")[-300:]
        if (datadir / "server.log").exists()
        else ""
    )
    shutil.rmtree(datadir, ignore_errors=True)
    raise NoPostgres(f"the PostgreSQL server did not start: {log}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["start"]:
        try:
            cluster = start_cluster()
        except NoPostgres as exc:
            print(f"no PostgreSQL: {exc}", file=sys.stderr)
            return 1
        print(cluster.url, cluster.datadir)
        return 0
    if argv[:1] == ["stop"] and len(argv) == 2:
        Cluster(Path(argv[1]), 0).destroy()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
