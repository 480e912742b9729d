"""The registry service as a real process (``consortia serve``, uvicorn) on a loopback port, API
keys made before it starts, and what the process uses (memory, open files) from ``/proc``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from api.auth import KeyStore
from api.sqlstore import open_sql
from audit.store import parse_database_url

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/api/v1"
#: The longest a service may take to answer /healthz after it is started.
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_keys(url: str, callers: dict[str, tuple[str, str | None]]) -> dict[str, str]:
    """One API key per caller (name → (role, city)), stored in the database at ``url``."""
    sql = open_sql(parse_database_url(url))
    try:
        keys = KeyStore(sql)
        keys.create_table()
        return {who: keys.create(role, city=city, name=who)[1]
                for who, (role, city) in callers.items()}
    finally:
        sql.close()


@dataclass
class Service:
    """``consortia serve`` on a database, started and stopped (or killed) by the test."""

    url: str
    log: Path
    prefix_cmd: Sequence[str] = ()  # e.g. runuser … -- to serve as another user
    env: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # caller → plain API key
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Service:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        for _ in range(3):  # another process may take the free port before uvicorn binds it
            self.port = free_port()
            cmd = [*self.prefix_cmd, sys.executable, "-m", "api.cli", "--database", self.url,
                   "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--log-level", "warning"]
            env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out,
                                             stderr=subprocess.STDOUT)
            if self._wait_healthy():
                return self
        raise AssertionError(f"the service did not start: {self.log.read_text()[-4000:]}")

    def _wait_healthy(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if httpx.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        return False

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """A graceful stop (SIGTERM), SIGKILL if it does not end in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url + PREFIX, timeout=timeout)

    def wait_caught_up(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until /readyz reports the projection has applied the ledger's head."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(self.base_url + "/readyz", timeout=5)
                last = r.json()
                if r.status_code == 200 and last["checks"]["projection"]["detail"]["lag"] == 0:
                    return dict(last)
            except httpx.HTTPError as e:
                last = repr(e)
            time.sleep(0.1)
        raise AssertionError(f"the projection did not catch up in {timeout}s: {last}")

    # ----------------------------------------------------------------------- what it uses
    def rss_kib(self) -> int:
        """Resident memory of the server process (VmRSS, KiB)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def open_sockets(self) -> int:
        """Open sockets (client connections and database connections)."""
        count = 0
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                if os.readlink(f"/proc/{self.pid}/fd/{fd}").startswith("socket:"):
                    count += 1
            except OSError:  # closed between the listing and the look
                pass
        return count
