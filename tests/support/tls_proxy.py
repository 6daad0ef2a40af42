"""A TLS front for a PostgreSQL server built without TLS (the embedded one).

It speaks PostgreSQL's TLS negotiation: a client's SSLRequest is answered `S`, the TLS
handshake follows with the given certificate, and the decrypted stream is piped to the
server. A client that does not ask for TLS, or (with `client_ca`) presents no certificate
signed by that CA, is refused, so a connection that works went through verified TLS.
`connections` counts the TLS sessions it carried.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from pathlib import Path

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104


class TlsProxy:
    def __init__(
        self, target_port: int, certfile: Path, keyfile: Path, client_ca: Path | None = None
    ) -> None:
        self._target_port = target_port
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(str(certfile), str(keyfile))
        if client_ca is not None:
            self._context.load_verify_locations(str(client_ca))
            self._context.verify_mode = ssl.CERT_REQUIRED
        self._server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0
        self.refused = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length, code = struct.unpack("!II", await reader.readexactly(8))
                if length == 8 and code == GSS_REQUEST:
                    writer.write(b"N")  # no GSSAPI encryption; the client asks for TLS next
                    await writer.drain()
                    continue
                break
            if length != 8 or code != SSL_REQUEST:
                self.refused += 1
                writer.close()
                return
            writer.write(b"S")
            await writer.drain()
            try:
                await writer.start_tls(self._context)
            except (ssl.SSLError, ConnectionError):
                self.refused += 1
                raise
            self.connections += 1
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self._target_port
            )
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
