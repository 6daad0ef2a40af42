"""How many event streams (server-sent events, `GET /feed`) may be open at once.

A stream holds a connection and polls the database for as long as its client listens;
without a cap, one caller opening a hundred of them slows every other request of the
service. `StreamSlots` allows `per_subject` open streams to each token subject and
`total` to all callers together; one more is answered 429 with `Retry-After`, before
the stream starts. The slot is given back when the stream ends, however it ends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.runtime.errors import CommandRejected

RETRY_SECONDS = 5


class TooManyStreams(CommandRejected):
    status_code = 429
    headers = {"Retry-After": str(RETRY_SECONDS)}


class StreamSlots:
    def __init__(self, per_subject: int, total: int) -> None:
        self.per_subject = per_subject
        self.total = total
        self.open: Counter[str] = Counter()

    def take(self, subject: str) -> None:
        """Count one more open stream of `subject`; TooManyStreams when none is left."""
        if self.open[subject] >= self.per_subject:
            raise TooManyStreams(
                f"{subject!r} has {self.open[subject]} streams open, the most one caller may "
                f"have; close one, or retry in {RETRY_SECONDS} s"
            )
        if self.open.total() >= self.total:
            raise TooManyStreams(
                f"the service serves {self.total} streams, the most it serves at once; retry "
                f"in {RETRY_SECONDS} s"
            )
        self.open[subject] += 1

    def give_back(self, subject: str) -> None:
        self.open[subject] -= 1
        if self.open[subject] <= 0:
            del self.open[subject]

    def stream(
        self, subject: str, body: AsyncIterator[bytes], media_type: str = "text/event-stream"
    ) -> StreamingResponse:
        """`body` streamed in a slot of `subject` (taken now, given back when it ends)."""
        self.take(subject)
        return _SlotStream(self, subject, body, media_type=media_type,
                           headers={"Cache-Control": "no-cache"})  # fmt: skip


class _SlotStream(StreamingResponse):
    def __init__(
        self, slots: StreamSlots, subject: str, body: AsyncIterator[bytes], **kwargs: object
    ) -> None:
        super().__init__(body, **kwargs)  # type: ignore[arg-type]
        self._slots, self._subject = slots, subject
        self._given_back = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()

    def release(self) -> None:
        if not self._given_back:
            self._given_back = True
            self._slots.give_back(self._subject)

    def __del__(self) -> None:  # an answer never sent still gives its slot back
        self.release()
