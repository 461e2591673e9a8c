"""A throw-away PostgreSQL cluster (Debian's packages) on a free port, and a fresh
database for each test, cloned from a migrated template.

PostgreSQL refuses to run as root, so when the tests run as root the cluster runs
as the `postgres` user the Debian package creates, in a directory of its own under
the system's temp dir (pytest's own temp dirs are private to root). fsync and
full_page_writes are off: they guard against the machine losing power, which a test
cluster never outlives. synchronous_commit stays on, so a crash of the server itself
(tests kill it) keeps every commit it acknowledged, as a production server does.

Cloning the template takes a few hundred milliseconds of the server's time, so the
next clone is made while a test runs (`Admin`, one connection on a thread of its own)
and a test's database is dropped without waiting for it; only the template's
clones are made ahead, so a test that asks for an empty database gets it at once.
initdb runs once per process: a test's cluster of its own starts from a copy.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from glob import glob
from pathlib import Path
from typing import Any

import asyncpg

from tests.support.server import free_port

STARTUP_TIMEOUT = 30.0
TEMPLATE = "cobro_template"
_names = itertools.count(1)
log = logging.getLogger(__name__)
_pristine: Path | None = None


def postgres_bindir() -> Path:
    """The newest installed server's binaries (Debian keeps them off PATH)."""
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"), key=_major_version)
    if not found:
        raise RuntimeError("PostgreSQL is not installed: `make test` installs it")
    return Path(found[-1]).parent


def _major_version(path: str) -> int:
    return int(Path(path).parent.parent.name)


class PostgresServer:
    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="cobro-pg-"))
        self.datadir = self.root / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._admin: Admin | None = None
        self._next_clone: Future[str] | None = None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o755)
        self._init_datadir()

    def _init_datadir(self) -> None:
        """initdb once per process; later clusters (tests that crash their own) start
        from a copy of that never-started directory, which is what initdb would make."""
        global _pristine
        if _pristine is not None and _pristine.is_dir():
            self._copy(_pristine, self.datadir)
            return
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        keep = Path(tempfile.mkdtemp(prefix="cobro-pg-pristine-"))
        atexit.register(shutil.rmtree, keep, True)
        self._copy(self.datadir, keep / "data")
        _pristine = keep / "data"

    @staticmethod
    def _copy(source: Path, target: Path) -> None:
        # cp -a keeps the owner (the postgres user, when root runs the tests) and modes.
        cp = shutil.which("cp")
        assert cp is not None, "cp is missing"
        subprocess.run([cp, "-a", str(source), str(target)], check=True, timeout=60)

    def url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.root}",
            "-c fsync=off",
            "-c full_page_writes=off",
            "-c max_connections=400",
            "-c shared_buffers=128MB",
        ]
        with (self.root / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                self._command("postgres", "-D", str(self.datadir), *" ".join(options).split()),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._ready():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start; see {self.root / 'server.log'}")
            time.sleep(0.05)
        return self

    def stop(self, *, fast: bool = True) -> None:
        """Stop it: SIGINT (fast shutdown) by default, SIGKILL when `fast` is False."""
        if self.process is None:
            return
        # The postmaster itself (runuser, when root, does not pass signals on).
        pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT if fast else signal.SIGKILL)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self, down_for: float = 0.0, *, crash: bool = False) -> None:
        self.stop(fast=not crash)
        time.sleep(down_for)
        self.start()

    def destroy(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def sql(self, statement: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                statement,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def prepare_template(self) -> None:
        """One migrated database that every test's database is cloned from."""
        from app.db.engine import Database
        from app.db.migrate import upgrade

        self.sql(f"CREATE DATABASE {TEMPLATE}")

        async def migrate() -> None:
            database = Database(self.url(TEMPLATE))
            try:
                await upgrade(database)
            finally:
                await database.dispose()

        asyncio.run(migrate())

    def new_database(self, *, migrated: bool = True) -> str:
        """A fresh database's name: a clone of the template (made while the previous
        test ran), or empty."""
        if not migrated:
            return self.admin.run(self._create, None).result()
        ready = self._next_clone or self.admin.run(self._create, TEMPLATE)
        self._next_clone = self.admin.run(self._create, TEMPLATE)
        return ready.result()

    def drop_database(self, name: str) -> None:
        """Drop it without waiting: its name is never used again."""
        self.admin.run(self._drop, name)

    @property
    def admin(self) -> Admin:
        if self._admin is None:
            self._admin = Admin(self)
        return self._admin

    @staticmethod
    async def _create(connection: asyncpg.Connection, template: str | None) -> str:
        name = f"cobro_test_{os.getpid()}_{next(_names)}"
        clone = f" TEMPLATE {template}" if template else ""
        await connection.execute(f"CREATE DATABASE {name}{clone}")
        return name

    @staticmethod
    async def _drop(connection: asyncpg.Connection, name: str) -> str:
        await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return name

    def _ready(self) -> bool:
        done = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            check=False,
        )
        return done.returncode == 0

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bindir / program), *args]
        if self.user is None:
            return command
        return ["runuser", "-u", self.user, "--", *command]

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            self._command(program, *args),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stderr.strip()}")


class Admin:
    """One connection to a cluster's `postgres` database, on an event loop in a thread
    of its own, running statements in the order they are handed over (so a drop or a
    clone may go on while the test thread does something else). It reconnects when a
    test has restarted the cluster."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self._connection: asyncpg.Connection | None = None
        self._loop = asyncio.new_event_loop()
        self._queue: asyncio.Lock | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def run(
        self, step: Callable[[asyncpg.Connection, Any], Awaitable[str]], argument: str | None
    ) -> Future[str]:
        async def in_turn() -> str:
            async with self._turn():
                try:
                    return await step(await self._connected(), argument)
                except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError):
                    self._drop_connection()  # the cluster restarted: once more
                    return await step(await self._connected(), argument)

        return asyncio.run_coroutine_threadsafe(in_turn(), self._loop)

    def _turn(self) -> asyncio.Lock:
        if self._queue is None:
            self._queue = asyncio.Lock()
        return self._queue

    async def _connected(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                host="127.0.0.1", port=self.server.port, user="postgres", database="postgres"
            )
        return self._connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.terminate()
            self._connection = None

    def close(self) -> None:
        """After the statements handed over so far (a clone made ahead, drops)."""

        async def disconnect() -> None:
            async with self._turn():
                if self._connection is None:
                    return
                # The cluster may be gone or going: its socket is closed below anyway.
                with contextlib.suppress(
                    OSError, asyncpg.InterfaceError, asyncpg.PostgresError, TimeoutError
                ):
                    await self._connection.close(timeout=5)
                self._drop_connection()

        asyncio.run_coroutine_threadsafe(disconnect(), self._loop).result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def statements_logged(log: Path, start: int) -> list[str]:
    """What PostgreSQL's log (log_statement = all) says was run since byte `start`, one
    entry each ("statement: ..." or "execute <name>: ..."), a statement's later lines
    joined to it; the DETAIL lines with its parameters left out."""
    entries: list[str] = []
    for line in log.read_bytes()[start:].decode().splitlines():
        if "LOG:  " in line or "DETAIL:  " in line:
            entries.append(line)
        elif entries:
            entries[-1] += "\n" + line
    return [entry.split("LOG:  ", 1)[1] for entry in entries if "LOG:  " in entry]


@contextlib.contextmanager
def logging_statements(postgres: PostgresServer, database: str) -> Iterator[Path]:
    """Every statement of `database`'s sessions opened inside the block goes to
    PostgreSQL's log (log_statement = all); the log's path, for statements_logged."""
    postgres.sql(f"ALTER DATABASE {database} SET log_statement = 'all'")
    try:
        yield postgres.root / "server.log"
    finally:
        postgres.sql(f"ALTER DATABASE {database} RESET log_statement")
