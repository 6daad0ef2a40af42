"""The fold's profile cache: valid only after its own token, bounded in size."""

from __future__ import annotations

import uuid

from services.analytics.domain.profile import Profile
from services.analytics.projections.cache import ProfileCache


def profiles(n: int) -> list[Profile]:
    return [Profile(uuid.uuid4()) for _ in range(n)]


def test_the_cache_is_kept_only_when_the_previous_token_is_its_own() -> None:
    cache = ProfileCache(10)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.follow(uuid.uuid4(), first)
    kept = profiles(3)
    cache.keep(kept)
    cache.committed()
    cache.follow(first, second)  # the token it left: nobody wrote in between
    assert set(cache.profiles) == {p.customer_id for p in kept}
    cache.committed()
    cache.follow(third, uuid.uuid4())  # another writer left `third`
    assert not cache.profiles


def test_the_cache_is_forgotten_after_a_transaction_that_did_not_commit() -> None:
    # a fold process that leaves the token as it found it (`writers.take_turn`) knows of
    # its own rolled-back transaction only by not having been told it committed
    cache = ProfileCache(10)
    token = uuid.uuid4()
    cache.found(token)
    cache.keep(profiles(2))
    cache.committed()
    cache.found(token)
    assert len(cache.profiles) == 2
    cache.keep(profiles(1))  # this transaction fails
    cache.found(token)
    assert not cache.profiles


def test_the_least_recently_folded_profiles_are_forgotten_beyond_the_capacity() -> None:
    cache = ProfileCache(3)
    old, recent = profiles(2), profiles(2)
    cache.keep(old)
    cache.keep(recent)
    cache.keep(cache.take([old[1].customer_id]).values())  # folded again: the newest
    assert list(cache.profiles) == [recent[0].customer_id, recent[1].customer_id,
                                    old[1].customer_id]  # fmt: skip
