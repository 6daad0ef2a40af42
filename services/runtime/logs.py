"""Structured logs: one JSON object per line, with the correlation id and actor of the
command or event being handled, so that one request can be followed from the HTTP call
through the events it caused to every consumer that applied them."""

from __future__ import annotations

import logging
import sys
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

from services.runtime.storage.eventstore import active_context

LogFormat = Literal["json", "text"]


class CommandContextFilter(logging.Filter):
    """Adds `correlation_id` and `actor` of the running command to every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        context = active_context()
        record.service = self._service
        record.correlation_id = context.correlation_id if context else None
        record.actor = context.actor if context else None
        return True


def configure_logging(service: str, level: str, log_format: LogFormat = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CommandContextFilter(service))
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}{service}{correlation_id}{actor}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
