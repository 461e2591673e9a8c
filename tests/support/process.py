"""Cobro processes of their own: an API (`uvicorn app.main:create_app --factory`) or
a worker (`cobro worker`), each with its output in a log file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from tests.support.server import free_port

# A cold start imports about 3.4 s of modules on an idle core; with every pytest worker
# busy on two slow cores, two processes starting side by side once took over 30 s
# (2026-12-02). Waiting longer costs nothing when they start in time.
STARTUP_TIMEOUT = 120.0


class ManagedProcess:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.env = {**os.environ, **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def start(self) -> ManagedProcess:
        self._log_file = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, *self.args],
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        return self

    def stop(self) -> int | None:
        """Stop it (SIGTERM, then SIGKILL after 10 s); return its exit code."""
        code = None
        if self.process is not None:
            self.process.terminate()
            try:
                code = self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code


class ApiProcess(ManagedProcess):
    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [
                "-m",
                "uvicorn",
                "app.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--ws-per-message-deflate",
                "false",
                "--timeout-graceful-shutdown",
                "1",
                "--loop",
                "asyncio",
            ],
            {"COBRO_PUBLIC_URL": self.url, **env},
            log,
        )

    def start(self) -> ApiProcess:
        super().start()
        return self.wait_ready()

    def wait_ready(self) -> ApiProcess:
        """Wait until it answers /healthz (it was started with `start` or `start_all`)."""
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"API process did not start; see {self.log}")
            time.sleep(0.05)


def start_all(*processes: ManagedProcess) -> None:
    """Start them side by side and wait until each API answers: their imports and
    start-ups overlap instead of adding up. Their databases must be migrated already
    (the fixtures' are), or they would all migrate at once."""
    try:
        for process in processes:
            ManagedProcess.start(process)
        for process in processes:
            if isinstance(process, ApiProcess):
                process.wait_ready()
    except BaseException:
        for process in processes:
            process.stop()
        raise


def worker_process(env: dict[str, str], log: Path) -> ManagedProcess:
    return ManagedProcess(["-m", "app.cli", "worker"], env, log)


def serve_process(env: dict[str, str], log: Path, port: int | None = None) -> ApiProcess:
    """`cobro serve` itself, as production runs it (wsproto, its own shutdown grace)."""
    process = ApiProcess(env, log, port)
    process.args = ["-m", "app.cli", "serve"]
    process.env.update({"COBRO_HOST": "127.0.0.1", "COBRO_PORT": str(process.port)})
    return process
