"""The services' output: each line to the terminal, prefixed with the service's name (in
colour on a terminal), and to the service's log file; and `say` for the supervisor's own
lines."""

import asyncio
import contextlib
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO

from local.up.layout import SERVICES, ServiceSpec

_COLOURS = ("36", "35", "33", "32", "34")


def _use_colour() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def say(text: str = "", *, error: bool = False) -> None:
    """Print, ignoring a terminal that went away (we must still stop the children)."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr if error else sys.stdout, flush=True)


def output_prefix(spec: ServiceSpec) -> str:
    """What each line of the service's output starts with on the terminal."""
    width = max(len(s.name) for s in SERVICES)
    prefix = f"{spec.name:<{width}} | "
    if _use_colour():
        colour = _COLOURS[SERVICES.index(spec) % len(_COLOURS)]
        prefix = f"\033[{colour}m{prefix}\033[0m"
    return prefix


@dataclass
class RunningService:
    spec: ServiceSpec
    process: asyncio.subprocess.Process
    log_file: IO[bytes]
    prefix: str
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=30))
    pump: "asyncio.Task[None] | None" = None
    started_at: float = field(default_factory=time.monotonic)
    quick_failures: int = 0

    async def copy_output(self) -> None:
        """Each line to the terminal, prefixed with the service name, and to its log file."""
        stream = self.process.stdout
        assert stream is not None
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the stream limit
                line = await stream.read(1 << 20)
            if not line:
                return
            with contextlib.suppress(OSError, ValueError):
                self.log_file.write(line)
                self.log_file.flush()
            text = line.decode(errors="replace").rstrip("\n")
            self.tail.append(text)
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.write(f"{self.prefix}{text}\n")
                sys.stdout.flush()

    def last_output(self) -> str:
        return "\n".join(f"    {line}" for line in self.tail) or "    (no output)"
