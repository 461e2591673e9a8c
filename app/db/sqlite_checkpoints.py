"""SQLite's WAL copied back into the database file off the event loop.

By default SQLite checkpoints inside a COMMIT once the WAL passes 1,000 pages:
copying them and two fsyncs, 8-10 ms during which the event loop stands still (one
commit in twenty under the write benchmark; a third of all the time spent
committing). Here the writer leaves that to a thread of its own (unless it falls far
behind): after every few commits a PASSIVE checkpoint runs there on a connection of
its own (SQLite releases the GIL while it copies and syncs), never blocking the loop.

A WAL file only starts over from its beginning when a writer begins while every
frame in it has been copied back, which under steady writes never happens by
itself. So once the WAL is past `RESET_FRAMES`, the writer holds back new
transactions for one more checkpoint (what came since the last, a few ms on that
thread), and its next transaction starts the WAL afresh. The loop keeps
serving everything else meanwhile; writes wait.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

# Checkpoint after this many group commits (a few hundred pages).
CHECKPOINT_EVERY = 32
# Start the WAL over once it holds this many pages (16 MiB at 4 KiB pages).
RESET_FRAMES = 4_096
# If checkpoints here fall behind (another process writing, a reader holding an old
# snapshot), SQLite's own checkpoint in the COMMIT takes over at this size.
FALLBACK_AUTOCHECKPOINT = 8 * RESET_FRAMES


class Checkpointer:
    def __init__(self, database: str, busy_timeout_ms: int) -> None:
        self._database = database
        self._busy_timeout_ms = busy_timeout_ms
        # A thread of its own: the loop's shared pool also resolves merchants' webhook
        # hosts, and a write held back for a reset must not queue behind those.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
        self._conn: sqlite3.Connection | None = None
        self._running: asyncio.Future[int] | None = None
        self._commits = 0
        self._closed = False
        self.reset_wanted = False

    def committed(self) -> None:
        """Count a group commit; start a checkpoint beside the loop every so often."""
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY or self._running is not None or self._closed:
            return
        self._commits = 0
        self._running = asyncio.get_running_loop().run_in_executor(self._thread, self._checkpoint)
        self._running.add_done_callback(self._finished)

    async def reset(self) -> None:
        """Copy back everything, while the caller holds back every writer of this
        process, so that the next transaction starts the WAL from its beginning."""
        try:
            if self._running is not None:
                await asyncio.shield(self._running)
            self.reset_wanted = False  # after the run above, which may have asked again
            if not self._closed:
                await asyncio.get_running_loop().run_in_executor(self._thread, self._checkpoint)
        except Exception:
            self.reset_wanted = False
            log.warning("WAL checkpoint failed; SQLite's own will take over", exc_info=True)

    def _finished(self, running: asyncio.Future[int]) -> None:
        self._running = None
        if running.cancelled():
            return
        if (error := running.exception()) is not None:
            log.warning("WAL checkpoint failed; SQLite's own will take over", exc_info=error)
            return
        if running.result() >= RESET_FRAMES:
            self.reset_wanted = True

    def _checkpoint(self) -> int:
        """PASSIVE: copy what no reader still needs, wait for nobody. Returns the
        number of pages in the WAL. Runs on the checkpoint thread, the only one that
        touches its connection."""
        if self._closed:
            return 0
        if self._conn is None:
            self._conn = sqlite3.connect(self._database, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        _busy, frames, _copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames)

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Stop: a checkpoint under way finishes on its thread; nothing waits for it."""
        if self._closed:
            return
        self._closed = True
        self._thread.submit(self._close_connection)
        self._thread.shutdown(wait=False)
