"""Processes the benchmark starts: Cobro API servers and the ceiling app (redis-server
and free ports come from the test suite's support code)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 60.0


class Process:
    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.args = args
        self.env = {**os.environ, **env}
        self.log_path = logs / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self, ready: str | None = None) -> Process:
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(  # noqa: S603 - fixed arguments of our own
            self.args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        if ready:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                try:
                    if httpx.get(ready, timeout=1).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                if self.popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not start; see {self.log_path}")
                time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self._log is not None:
            self._log.close()


def cobro_api(name: str, port: int, env: dict[str, str], logs: Path) -> Process:
    """`cobro serve`, exactly as `make run` starts it (app/cli.py)."""
    return Process(
        name,
        [sys.executable, "-m", "app.cli", "serve"],
        {"PORT": str(port), "COBRO_LOG_LEVEL": "warning", **env},
        logs,
    ).start(ready=f"http://127.0.0.1:{port}/healthz")


def cobro_worker(name: str, env: dict[str, str], logs: Path) -> Process:
    """`cobro worker`: the background jobs, for API processes that do not run them."""
    return Process(
        name,
        [sys.executable, "-m", "app.cli", "worker"],
        {"COBRO_LOG_LEVEL": "warning", **env},
        logs,
    ).start()


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ceiling(port: int, database_url: str, logs: Path) -> Process:
    return Process(
        "ceiling",
        [sys.executable, "bench/ceiling.py", "--port", str(port), "--database", database_url],
        {},
        logs,
    ).start(ready=f"http://127.0.0.1:{port}/ws")
