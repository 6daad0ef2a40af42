"""Signatures on the CRM's own topics: only the owning service publishes there.

Every message a service publishes on its topic (`OWNERS`) carries the header
`crm-signature`, by which any consumer can check that the service holding the private
key made these exact bytes for this topic. A forged message (published by anyone with
write access to the broker but without the key) or a changed one is refused. Inbound
topics are the open door for other systems and carry no signature.

Signing each message with Ed25519 would cost a consumer 50-80 µs per message, more than a
stream-speed fold has for everything. So a relay signs batches, as transparency logs do:
the messages of one publish batch are the leaves of a Merkle tree, the service signs its
root once, and each message carries the signature, its index and the sibling hashes that
lead from its leaf to the root. A consumer hashes the message (about ten SHA-256 of a few
dozen bytes) and checks the root's signature once per batch (`Verifier` remembers
verified roots).

    leaf  = SHA-256(0x00 || topic || 0x00 || value)
    node  = SHA-256(0x01 || left || right)     (an odd node is carried up unchanged)
    signed: b"crm-batch-v1" || root

Header `crm-signature` (bytes): version 1 (1 byte), key id (8 bytes: the first 8 bytes of
SHA-256 of the raw public key), signature (64), leaf index (4, big-endian), leaf count
(4), then the sibling hashes (32 each) from the leaf up.

Keys: each service has an Ed25519 key pair; consumers know every service's public keys
(`TrustedKeys`, a JSON object `{service: [base64 raw public key, ...]}`). Rotation: add
the new public key to every consumer's set, switch the producer to the new private key,
and drop the old public key once the topics no longer hold messages it signed (their
retention).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contracts.topics import Topic

HEADER = "crm-signature"
VERSION = 1
DOMAIN = b"crm-batch-v1"
KEY_ID_BYTES = 8
_FIXED = struct.Struct(">B8s64sII")

OWNERS: Mapping[str, str] = {
    Topic.CUSTOMER: "customer",
    Topic.SALES: "sales",
    Topic.INTERACTION: "interaction",
    Topic.ANALYTICS: "analytics",
}
"""Each internal topic and the one service that may publish on it."""


class SignatureError(ValueError):
    """A message on an internal topic that its owner did not sign; the message says why."""


def _leaf(topic: str, value: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + topic.encode() + b"\x00" + value).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(raw_public_key(key)).digest()[:KEY_ID_BYTES]


@dataclass(frozen=True)
class Signer:
    """A service's private key, signing the batches its relay publishes."""

    key: Ed25519PrivateKey

    @classmethod
    def from_base64(cls, seed: str) -> Signer:
        """The key whose 32-byte seed `seed` holds (base64)."""
        try:
            raw = base64.b64decode(seed.strip(), validate=True)
            return cls(Ed25519PrivateKey.from_private_bytes(raw))
        except (binascii.Error, ValueError):
            raise ValueError("a signing key is base64 of 32 bytes") from None

    @property
    def key_id(self) -> bytes:
        return key_id(self.key.public_key())

    def sign(self, topic: str, values: Sequence[bytes]) -> list[bytes]:
        """The `crm-signature` header of each of `values`, published together on `topic`."""
        if not values:
            return []
        levels = [[_leaf(topic, v) for v in values]]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append(
                [
                    _node(below[i], below[i + 1]) if i + 1 < len(below) else below[i]
                    for i in range(0, len(below), 2)
                ]
            )
        signature = self.key.sign(DOMAIN + levels[-1][0])
        headers = []
        for index in range(len(values)):
            siblings = []
            position = index
            for level in levels[:-1]:
                sibling = position ^ 1
                if sibling < len(level):
                    siblings.append(level[sibling])
                position //= 2
            fixed = _FIXED.pack(VERSION, self.key_id, signature, index, len(values))
            headers.append(fixed + b"".join(siblings))
        return headers


def _root(leaf: bytes, index: int, count: int, siblings: bytes) -> bytes:
    """The root a leaf's path leads to; SignatureError if the path does not fit."""
    node, position, width, offset = leaf, index, count, 0
    while width > 1:
        sibling = position ^ 1
        if sibling < width:
            if offset + 32 > len(siblings):
                raise SignatureError("the signature's proof is cut short")
            other = siblings[offset : offset + 32]
            offset += 32
            node = _node(other, node) if position & 1 else _node(node, other)
        position //= 2
        width = (width + 1) // 2
    if offset != len(siblings):
        raise SignatureError("the signature's proof is longer than its tree")
    return node


class TrustedKeys:
    """The public keys of the services, by key id, and which service each belongs to."""

    def __init__(self, keys: Mapping[str, Sequence[Ed25519PublicKey]]) -> None:
        self._by_id: dict[bytes, tuple[str, Ed25519PublicKey]] = {
            key_id(k): (service, k) for service, ks in keys.items() for k in ks
        }

    @classmethod
    def from_json(cls, text: str) -> TrustedKeys:
        """`{"customer": ["<base64 raw public key>", ...], ...}`."""
        try:
            document = json.loads(text)
            if not isinstance(document, dict):
                raise ValueError("not an object")
            return cls(
                {
                    str(service): [
                        Ed25519PublicKey.from_public_bytes(base64.b64decode(k, validate=True))
                        for k in keys
                    ]
                    for service, keys in document.items()
                }
            )
        except (ValueError, TypeError, binascii.Error) as exc:
            raise ValueError(
                f'trusted keys are a JSON object {{"service": ["<base64 public key>", ...]}}: {exc}'
            ) from None

    def owner(self, key: bytes) -> tuple[str, Ed25519PublicKey] | None:
        return self._by_id.get(key)

    def services(self) -> set[str]:
        return {service for service, _ in self._by_id.values()}


class Verifier:
    """Checks the signatures of messages on the internal topics, remembering the batch
    roots it has verified."""

    def __init__(self, trusted: TrustedKeys, *, remembered: int = 4096) -> None:
        self._trusted = trusted
        self._verified: dict[tuple[bytes, bytes], None] = {}
        self._remembered = remembered

    def check(
        self, topic: str, value: bytes | None, headers: Sequence[tuple[str, bytes]] | None
    ) -> None:
        """Nothing when `value` on `topic` was signed by the topic's owner; SignatureError
        saying why otherwise. Topics without an owner (inbound ones) are not checked."""
        owner = OWNERS.get(topic)
        if owner is None:
            return
        blob = next((v for k, v in headers or () if k == HEADER), None)
        if blob is None:
            raise SignatureError(f"unsigned: only the {owner} service publishes on {topic}")
        if len(blob) < _FIXED.size:
            raise SignatureError("the signature header is too short")
        version, kid, signature, index, count = _FIXED.unpack_from(blob)
        if version != VERSION:
            raise SignatureError(f"unknown signature version {version}")
        if not 0 <= index < count:
            raise SignatureError("the signature's leaf index lies outside its batch")
        found = self._trusted.owner(kid)
        if found is None:
            raise SignatureError(f"signed with an unknown key {kid.hex()}")
        service, public_key = found
        if service != owner:
            raise SignatureError(
                f"signed by the {service} service, but only the {owner} service publishes "
                f"on {topic}"
            )
        root = _root(_leaf(topic, value or b""), index, count, blob[_FIXED.size :])
        if (kid, root + signature) in self._verified:
            return
        try:
            public_key.verify(signature, DOMAIN + root)
        except InvalidSignature:
            raise SignatureError(
                "the signature does not verify: the message was changed or forged"
            ) from None
        if len(self._verified) >= self._remembered:
            self._verified.pop(next(iter(self._verified)))
        self._verified[(kid, root + signature)] = None


def new_signing_seed() -> str:
    """A new private key's seed, base64 (what `CRM_SIGNING_KEY` holds)."""
    return base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()


def public_key_of(seed: str) -> str:
    """The base64 raw public key of the private key seed `seed`."""
    return base64.b64encode(raw_public_key(Signer.from_base64(seed).key.public_key())).decode()
