"""Key rotation of the signatures (`contracts.signing`): while a service's old and new
public keys are both trusted, messages signed with either verify, so the producer can
switch keys without a consumer refusing anything; a dropped key or another service's key
is refused."""

from __future__ import annotations

import json

import pytest

from contracts.signing import (
    OWNERS,
    SignatureError,
    Signer,
    TrustedKeys,
    Verifier,
    new_signing_seed,
    public_key_of,
)


def trusted(keys: dict[str, list[str]]) -> Verifier:
    return Verifier(TrustedKeys.from_json(json.dumps(keys)))


@pytest.mark.parametrize(("topic", "owner"), sorted(OWNERS.items()))
def test_rotation_keeps_every_message_verifiable(topic: str, owner: str) -> None:
    old, new = new_signing_seed(), new_signing_seed()
    before = [b'{"n": 1}', b'{"n": 2}']
    after = [b'{"n": 3}']
    signed_before = Signer.from_base64(old).sign(topic, before)
    signed_after = Signer.from_base64(new).sign(topic, after)

    # 1. every consumer trusts both keys, 2. the producer switches to the new one
    both = trusted({owner: [public_key_of(old), public_key_of(new)]})
    signed = zip(before + after, signed_before + signed_after, strict=True)
    for value, header in signed:
        both.check(topic, value, [("crm-signature", header)])

    # 3. once the old key's messages are past retention, it is dropped
    only_new = trusted({owner: [public_key_of(new)]})
    only_new.check(topic, after[0], [("crm-signature", signed_after[0])])
    with pytest.raises(SignatureError, match="unknown key"):
        only_new.check(topic, before[0], [("crm-signature", signed_before[0])])


def test_a_key_trusted_for_another_service_does_not_sign_for_this_one() -> None:
    (topic, owner), (_, other) = sorted(OWNERS.items())[:2]
    seed = new_signing_seed()
    verifier = trusted({owner: [public_key_of(new_signing_seed())], other: [public_key_of(seed)]})
    (header,) = Signer.from_base64(seed).sign(topic, [b"{}"])
    with pytest.raises(SignatureError, match=f"only the {owner} service"):
        verifier.check(topic, b"{}", [("crm-signature", header)])
