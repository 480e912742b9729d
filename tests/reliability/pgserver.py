"""A throwaway PostgreSQL server of the test's own (initdb in a temporary directory, a free
loopback port), so that a test may stop and restart it without touching the shared server."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.reliability.service import free_port

#: initdb refuses to run as root: a root test runs the server as this user.
SERVER_USER = "postgres"


def server_bindir() -> Path | None:
    """The newest installed PostgreSQL server binaries (Debian layout), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def unavailable() -> str | None:
    """Why a throwaway server cannot be run here, or None."""
    if server_bindir() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and no {SERVER_USER!r} user to run the server as"
    return None


class ThrowawayPostgres:
    """``start()``, ``restart()``, ``stop()``, ``remove()``; ``url(dbname)`` to connect."""

    def __init__(self) -> None:
        bindir = server_bindir()
        assert bindir is not None
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="consortia-pg-"))
        self.data = self.base / "data"
        self.logfile = self.base / "server.log"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.base, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", SERVER_USER, "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
                  "-E", "UTF8", "--locale=C")

    def _run(self, tool: str, *args: str, check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd: Sequence[str] = [*self._as, str(self.bindir / tool), *args]
        # To a file, not a pipe: a server started by pg_ctl keeps its output open.
        with tempfile.TemporaryFile("w+") as out:
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, text=True,
                                  timeout=timeout, cwd=self.base)
            out.seek(0)
            output = out.read()
        if check and done.returncode != 0:
            raise AssertionError(f"{tool} failed: {output}{self.log()}")
        return done

    def log(self) -> str:
        try:
            return self.logfile.read_text()[-4000:]
        except OSError:
            return ""

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=100")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.logfile),
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop",
                  check=False)

    def restart(self, mode: str = "fast") -> None:
        """Stop (ending every connection) and start again on the same port and data."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-m", mode, "-w",
                  "-t", "60", "restart")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)
