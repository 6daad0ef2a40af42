"""Background tasks that cannot end without a word.

Each background task of a service (consumers, relays, re-scoring, sweeps) retries what is
transient itself (`services.runtime.transient`). One that ends anyway (any other error,
or returning when it should run forever) is a failure the process cannot mend: it is
logged, counted (`crm_background_task_failures_total`), reported by `/health/live`
(503, with the task and its error), and, in a service process, ends the process with
status 70 so that its supervisor (`crm up`, Kubernetes, systemd) starts it afresh.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from services.runtime.metrics import TASK_FAILURES

log = logging.getLogger(__name__)

EXIT_STATUS = 70
"""How a service process ends after a background task failed (EX_SOFTWARE)."""


def stop_this_process() -> None:
    """Ask this process to stop as on `kill -TERM`: the server shuts down gracefully."""
    os.kill(os.getpid(), signal.SIGTERM)


class Supervisor:
    """Starts background tasks and watches them end."""

    def __init__(self, on_failure: Callable[[], None] | None = None) -> None:
        self._on_failure = on_failure
        self.failures: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, name: str, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(self._ended)
        self.tasks.append(task)
        return task

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        failure = f"background task {task.get_name()} ended: " + (
            repr(error) if error is not None else "returned"
        )
        self.failures.append(failure)
        TASK_FAILURES.labels(task=task.get_name()).inc()
        log.critical(failure, exc_info=error)
        if self._on_failure is not None:
            self._on_failure()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []
