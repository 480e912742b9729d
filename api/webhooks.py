"""Standard Webhooks 1.0 signing (https://www.standardwebhooks.com): what the registry sends with
every delivery, and the check a receiver makes.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}`` (the exact body bytes sent).
Symmetric keys are ``whsec_`` + base64 of 32 random bytes and sign with HMAC-SHA256 (``v1,``);
asymmetric keys are Ed25519: ``whsk_`` + base64 of the 32-byte private seed (kept by the registry)
and ``whpk_`` + base64 of the public key (given to the receiver), signing ``v1a,``. While a key
rotates the delivery carries one signature per valid key, space-separated, in one
``webhook-signature`` header; a receiver accepts the delivery when any signature verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

HMAC_PREFIX = "whsec_"
PRIVATE_PREFIX = "whsk_"
PUBLIC_PREFIX = "whpk_"
#: How far a receiver lets ``webhook-timestamp`` be from its clock (seconds).
DEFAULT_TOLERANCE = 300


class WebhookVerificationError(ValueError):
    """A delivery whose headers or signatures do not verify."""


def new_hmac_secret() -> str:
    """A fresh symmetric secret, ``whsec_`` + base64 of 32 random bytes."""
    return HMAC_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_ed25519_key() -> tuple[str, str]:
    """A fresh Ed25519 key pair: (``whsk_…`` private seed, ``whpk_…`` public key)."""
    seed = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw,
                                                      NoEncryption())
    private = PRIVATE_PREFIX + base64.b64encode(seed).decode()
    return private, public_key_of(private)


def _decode(key: str, prefix: str) -> bytes:
    return base64.b64decode(key.removeprefix(prefix), validate=True)


def public_key_of(private_key: str) -> str:
    """The ``whpk_…`` public key of a ``whsk_…`` private key."""
    key = Ed25519PrivateKey.from_private_bytes(_decode(private_key, PRIVATE_PREFIX))
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode()


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    """``{id}.{timestamp}.{body}``; an id with a full stop would make the framing ambiguous."""
    if not msg_id or "." in msg_id:
        raise ValueError("a webhook id must be non-empty and contain no full stop")
    return f"{msg_id}.{int(timestamp)}.".encode() + body


def sign_one(key: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature (``v1,…`` for ``whsec_``, ``v1a,…`` for ``whsk_``)."""
    content = signed_content(msg_id, timestamp, body)
    if key.startswith(PRIVATE_PREFIX):
        private = Ed25519PrivateKey.from_private_bytes(_decode(key, PRIVATE_PREFIX))
        return "v1a," + base64.b64encode(private.sign(content)).decode()
    secret = _decode(key, HMAC_PREFIX)
    return "v1," + base64.b64encode(hmac.new(secret, content, hashlib.sha256).digest()).decode()


def sign(keys: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: one signature per key, space-separated."""
    if not keys:
        raise ValueError("at least one signing key is needed")
    return " ".join(sign_one(k, msg_id, timestamp, body) for k in keys)


def webhook_headers(keys: Sequence[str], msg_id: str, body: bytes, *,
                    timestamp: int | None = None) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` for one attempt."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts),
            "webhook-signature": sign(keys, msg_id, ts, body)}


def _header(headers: Mapping[str, str], name: str) -> str:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    raise WebhookVerificationError(f"missing {name} header")


def verify(keys: Iterable[str], body: bytes, headers: Mapping[str, str], *,
           tolerance: int | None = DEFAULT_TOLERANCE, now: float | None = None) -> str:
    """Check a received delivery against the receiver's keys (``whsec_…`` and/or ``whpk_…``);
    returns the ``webhook-id``, or raises ``WebhookVerificationError``."""
    msg_id = _header(headers, "webhook-id")
    raw_ts = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    if tolerance is not None:
        clock = time.time() if now is None else now
        if abs(clock - timestamp) > tolerance:
            raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    try:
        content = signed_content(msg_id, timestamp, body)
    except ValueError as e:
        raise WebhookVerificationError(str(e)) from None
    keys = list(keys)
    for item in signatures.split():
        version, _, encoded = item.partition(",")
        try:
            signature = base64.b64decode(encoded, validate=True)
        except ValueError:
            continue
        for key in keys:
            if version == "v1" and key.startswith(HMAC_PREFIX):
                expected = hmac.new(_decode(key, HMAC_PREFIX), content, hashlib.sha256).digest()
                if hmac.compare_digest(expected, signature):
                    return msg_id
            elif version == "v1a" and key.startswith(PUBLIC_PREFIX):
                public = Ed25519PublicKey.from_public_bytes(_decode(key, PUBLIC_PREFIX))
                try:
                    public.verify(signature, content)
                except InvalidSignature:
                    continue
                return msg_id
    raise WebhookVerificationError("no signature matches a known key")
