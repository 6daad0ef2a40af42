"""Child processes of this process, and the ports they listen on.

Children never outlive us. On Linux each child asks the kernel for SIGKILL when its parent
dies (`PR_SET_PDEATHSIG`), so even a SIGKILL of this process takes the servers with it.
That request is tied to the thread that started the child, so start them from the main
thread (or with `spawn()`, from any thread). Each child also gets its own process group:
a Ctrl-C in the terminal reaches only this process, which then stops the children in
order (services, broker, database) instead of every process receiving SIGINT at the same
instant.
"""

import abc
import contextlib
import ctypes
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
_PR_SET_PDEATHSIG = 1


class EmbeddedError(RuntimeError):
    """An embedded server could not be started."""


class PortInUse(EmbeddedError):
    def __init__(self, port: int, what: str) -> None:
        super().__init__(f"cannot start {what}: port {port} on {HOST} is already in use")
        self.port = port


# Ports --------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:`port` (connections in TIME_WAIT are fine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


# Child processes ----------------------------------------------------------------------

_prctl: Any = None


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A `preexec_fn` making the child receive SIGKILL when the *thread* that forks it
    dies (that is how the kernel defines "parent" here), or None off Linux."""
    global _prctl
    if not sys.platform.startswith("linux"):
        return None
    if _prctl is None:
        # Looked up before the fork: the child only makes a foreign call.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        prctl.restype = ctypes.c_int
        _prctl = prctl
    prctl = _prctl
    kill = int(signal.SIGKILL)

    def preexec() -> None:
        # Runs after the switch of user (which would clear the setting), before exec.
        prctl(_PR_SET_PDEATHSIG, kill, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before the line above
            os._exit(1)

    return preexec


def process_options(*, die_with_parent: bool) -> dict[str, Any]:
    """`Popen` options of every child: its own process group, no terminal input and, when
    `die_with_parent`, death with the calling thread (see `child_process_options`)."""
    options: dict[str, Any] = {"process_group": 0, "stdin": subprocess.DEVNULL}
    preexec = _die_with_parent(os.getpid()) if die_with_parent else None
    if preexec is not None:
        options["preexec_fn"] = preexec
    return options


def child_process_options() -> dict[str, Any]:
    """Keyword arguments for `subprocess.Popen` / `asyncio.create_subprocess_exec`.

    The child gets its own process group (a terminal Ctrl-C is for us to handle), no
    terminal input, and, on Linux, is killed by the kernel if we die. The kernel ties that
    last part to the thread that starts the child, so it is only given on the main thread;
    from other threads (e.g. `asyncio.to_thread`) use `spawn()`, which has no such limit.
    """
    on_main = threading.current_thread() is threading.main_thread()
    if not on_main:
        log.warning(
            "child process started outside the main thread without spawn(): it will not "
            "be killed automatically if this process dies"
        )
    return process_options(die_with_parent=on_main)


class _Spawner:
    """A thread that lives as long as the process and starts children for other threads,
    so that their parent-death signal fires when the process dies, not when a worker
    thread ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def call(self, function: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="embedded-spawner", daemon=True
                )
                self._thread.start()
        result: Future[Any] = Future()
        self._requests.put((function, result))
        return result.result()

    def _serve(self) -> None:
        while True:
            function, result = self._requests.get()
            try:
                result.set_result(function())
            except BaseException as error:
                result.set_exception(error)


_spawner = _Spawner()


def spawn(command: Sequence[str], **popen_options: Any) -> "subprocess.Popen[bytes]":
    """`subprocess.Popen(command, ...)` with `child_process_options()`, from any thread.

    The child is killed by the kernel if this process dies, even when the calling thread
    is not the main one (it is then started from a long-lived helper thread).
    """

    def start() -> "subprocess.Popen[bytes]":
        return subprocess.Popen(
            list(command), **popen_options, **process_options(die_with_parent=True)
        )

    if threading.current_thread() is threading.main_thread():
        return start()
    process: subprocess.Popen[bytes] = _spawner.call(start)
    return process


def kill_tree(process: "subprocess.Popen[bytes]", timeout: float = 10.0) -> None:
    """SIGKILL a child and everything it started, and reap the child."""
    descendants: list[Any] = []
    import psutil

    with contextlib.suppress(psutil.Error):
        descendants = psutil.Process(process.pid).children(recursive=True)
    # The parent first, so that it cannot start replacements for killed children.
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    process.wait()
    for child in descendants:
        with contextlib.suppress(Exception):
            child.kill()
    # They are not our children, so wait for them to die (zombies count as dead: they
    # hold no memory or sockets any more, and only their new parent can reap them).
    deadline = time.monotonic() + timeout
    while descendants and time.monotonic() < deadline:
        descendants = [child for child in descendants if _alive(child)]
        if descendants:
            time.sleep(0.01)


def _alive(process: Any) -> bool:
    import psutil

    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def stop_process(
    process: "subprocess.Popen[bytes]", sig: signal.Signals, timeout: float
) -> int | None:
    """Send `sig`, wait up to `timeout` seconds, then SIGKILL. Always reaps the child."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("pid %s ignored %s for %.0fs, killing it", process.pid, sig.name, timeout)
            kill_tree(process)
    return process.returncode


def tail(path: Path | None, lines: int = 40, offset: int = 0) -> str:
    """The last `lines` lines of a log file from `offset` on, to explain a failed start."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            text = file.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def tail_of(stream: IO[bytes], lines: int = 40) -> str:
    """The last `lines` lines of an open (temporary) log file."""
    try:
        stream.flush()
        stream.seek(0)
        text = stream.read().decode(errors="replace")
    except (OSError, ValueError):
        return ""
    return "\n".join(text.splitlines()[-lines:])


# Servers ------------------------------------------------------------------------------


class ChildServer(abc.ABC):
    """What the embedded servers share: a child process with its log, started and
    stopped as a context manager."""

    _process: "subprocess.Popen[bytes] | None"
    _log: IO[bytes] | None

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the server's processes have used so far, counting
        those that have exited (such as PostgreSQL's closed connections); for benchmarks."""
        import psutil

        if self._process is None:
            return 0.0
        root = psutil.Process(self._process.pid)
        total = 0.0
        for process in (root, *root.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                used = process.cpu_times()
                total += used.user + used.system + used.children_user + used.children_system
        return total

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _close(self, process: "subprocess.Popen[bytes]") -> None:
        if process.poll() is None:
            kill_tree(process)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
