"""The background work: outbox relay, expiry sweep, merchant webhook delivery,
reconciliation, housekeeping. `cobro worker` runs it on its own; outside
production the API process runs it too (`COBRO_EMBEDDED_WORKER`).

Every job is safe to run in several processes at once: the rows it works on are
leased (or claimed with SKIP LOCKED on PostgreSQL) before anything is done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from opentelemetry.trace import Tracer

from app import trace_context
from app.domain.errors import ServiceUnavailable
from app.metrics import JOB_LAST_SUCCESS, JOB_RUNS, JOB_SECONDS

log = logging.getLogger("cobro.worker")


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[], Awaitable[object]]


class Worker:
    def __init__(self, jobs: list[Job], tracer: Tracer | None = None) -> None:
        self.jobs = jobs
        # Set when traces are on: each run of a job is a trace of its own.
        self.tracer = tracer

    async def run(self) -> None:
        await asyncio.gather(*(self._loop(job) for job in self.jobs))

    async def _loop(self, job: Job) -> None:
        seconds = JOB_SECONDS.labels(job.name)
        last_success = JOB_LAST_SUCCESS.labels(job.name)
        run = job.run
        if self.tracer is not None:
            run = trace_context.traced_job(job.name, run, self.tracer)
        while True:
            started = time.perf_counter()
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except ServiceUnavailable:
                # The database's outage is logged once, where it is seen (app/db/outage.py).
                JOB_RUNS.labels(job.name, "db_unavailable").inc()
            except Exception:
                JOB_RUNS.labels(job.name, "failed").inc()
                log.exception(
                    "worker job %s failed; it runs again in %.1f s",
                    job.name,
                    job.every_seconds,
                    extra={"job": job.name},
                )
            else:
                JOB_RUNS.labels(job.name, "ok").inc()
                last_success.set_to_current_time()
            finally:
                seconds.observe(time.perf_counter() - started)
            await asyncio.sleep(job.every_seconds)
