"""The fold's memory of what it last stored, so that a batch need not read it back.

Every writer of the analytics tables (the fold, the RFM re-scoring, the sweep, a segment
definition) holds the writers' lock and leaves a new random token in `writer_token`
(`writers.claim`). The fold keeps the token it left with the profiles, boundaries and rules it
wrote: when the next batch finds that same token, nobody else has written since and its
own transaction committed, so what it keeps is what is stored. Any other token (another
replica, the re-scoring, a rolled-back batch, a rebuilt schema) empties the cache, and
the batch reads from the tables as before.

A fold process whose batch changes only the customers of its own partitions (in a
consumer group of fold processes, partition `n` of every topic goes to one process) leaves
the token as it found it (`writers.take_turn`): no other process's memory holds those
customers. It forgets its memory when the group gives it partitions (another process may
have folded their customers since), and when a transaction of its own did not commit
(`pending`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from uuid import UUID

from services.analytics.domain.profile import Profile
from services.analytics.domain.segments import SegmentRule
from services.analytics.projections.groups import Groups
from services.analytics.projections.store import Bounds


class ProfileCache:
    """Profiles (the `capacity` most recently folded), RFM boundaries, segment rules and
    merge groups as the fold last wrote them, valid while the writer token is the one it left."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.token: UUID | None = None
        self.profiles: dict[UUID, Profile] = {}
        self.bounds: Bounds | None = None
        self.rules: list[SegmentRule] | None = None
        self.groups: Groups | None = None
        """Every merge group (only the fold changes them: `groups.follow_merges`)."""
        self.pending = False
        """A transaction folded into the cache and was not yet told committed: should the
        next one begin first, it did not commit, and the cache is forgotten."""

    def follow(self, previous: UUID, new: UUID) -> None:
        """The writer token was claimed (`writers.claim`): forget everything unless the previous
        token is the one this cache left. From here on the cache stands for the claiming
        transaction: if it does not commit, the next claim finds another token."""
        self.found(previous)
        self.token = new

    def found(self, token: UUID) -> None:
        """A transaction of the fold begins and finds `token`: forget everything unless it
        is the one this cache stands for and the last transaction committed."""
        if token != self.token or self.pending:
            self.clear()
        self.token = token
        self.pending = True

    def committed(self) -> None:
        self.pending = False

    def clear(self) -> None:
        self.profiles.clear()
        self.bounds = self.rules = None
        self.groups = None

    def take(self, customer_ids: Iterable[UUID]) -> dict[UUID, Profile]:
        """The kept profiles of these customers, removed from the cache (`keep` puts
        them back once folded)."""
        found = {}
        for customer_id in customer_ids:
            profile = self.profiles.pop(customer_id, None)
            if profile is not None:
                found[customer_id] = profile
        return found

    def keep(self, profiles: Iterable[Profile]) -> None:
        """Remember profiles as written, the newest last; forget the least recently
        folded beyond the capacity."""
        for profile in profiles:
            self.profiles[profile.customer_id] = profile
        excess = len(self.profiles) - self.capacity
        for customer_id in list(itertools.islice(self.profiles, max(0, excess))):
            del self.profiles[customer_id]
