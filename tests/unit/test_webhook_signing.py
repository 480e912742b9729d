"""Standard Webhooks 1.0 signing, checked against the specification's reference libraries."""

from __future__ import annotations

import base64

import pytest

from api.webhooks import (
    HMAC_PREFIX,
    PRIVATE_PREFIX,
    PUBLIC_PREFIX,
    WebhookVerificationError,
    new_ed25519_key,
    new_hmac_secret,
    public_key_of,
    sign,
    sign_one,
    signed_content,
    verify,
    webhook_headers,
)

# The reference libraries' own test vectors (standard-webhooks/libraries: python
# tests/test_webhooks.py ``test_sign_function``, go webhook_asymmetric_test.go
# ``TestAsymmetricWebhookSign``).
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
PAYLOAD = b'{"test": 2432232314}'
HMAC_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HMAC_EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
ED25519_SEED = "VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
ED25519_EXPECTED = ("v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM"
                    "5WqyeFiL8Ag==")


def headers(signature: str, *, msg_id: str = MSG_ID, ts: int = TIMESTAMP) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_hmac_signature_matches_the_reference_example() -> None:
    assert sign_one(HMAC_KEY, MSG_ID, TIMESTAMP, PAYLOAD) == HMAC_EXPECTED


def test_ed25519_signature_matches_the_reference_example() -> None:
    assert sign_one(PRIVATE_PREFIX + ED25519_SEED, MSG_ID, TIMESTAMP, PAYLOAD) == ED25519_EXPECTED


def test_the_reference_signatures_verify_with_the_receivers_keys() -> None:
    public = public_key_of(PRIVATE_PREFIX + ED25519_SEED)
    assert public.startswith(PUBLIC_PREFIX)
    assert verify([HMAC_KEY], PAYLOAD, headers(HMAC_EXPECTED), now=TIMESTAMP) == MSG_ID
    assert verify([public], PAYLOAD, headers(ED25519_EXPECTED), now=TIMESTAMP) == MSG_ID


def test_the_signed_content_is_id_timestamp_and_body_joined_by_full_stops() -> None:
    assert signed_content("evt-1", 17, b"{}") == b"evt-1.17.{}"


def test_an_id_with_a_full_stop_is_refused_as_ambiguous() -> None:
    with pytest.raises(ValueError):
        signed_content("a.b", 1, b"{}")


def test_during_a_rotation_one_header_carries_a_signature_per_key_and_either_verifies() -> None:
    old, new = new_hmac_secret(), new_hmac_secret()
    private, public = new_ed25519_key()
    h = webhook_headers([old, new, private], "evt-1", b'{"a":1}', timestamp=TIMESTAMP)
    parts = h["webhook-signature"].split(" ")
    assert [p.split(",")[0] for p in parts] == ["v1", "v1", "v1a"]
    for keys in ([old], [new], [public]):
        assert verify(keys, b'{"a":1}', h, now=TIMESTAMP) == "evt-1"


def test_a_tampered_body_a_wrong_key_or_a_foreign_scheme_is_refused() -> None:
    good = headers(HMAC_EXPECTED)
    with pytest.raises(WebhookVerificationError):
        verify([HMAC_KEY], PAYLOAD + b" ", good, now=TIMESTAMP)
    with pytest.raises(WebhookVerificationError):
        verify([new_hmac_secret()], PAYLOAD, good, now=TIMESTAMP)
    with pytest.raises(WebhookVerificationError):  # an HMAC signature is no Ed25519 signature
        verify([new_ed25519_key()[1]], PAYLOAD, good, now=TIMESTAMP)
    with pytest.raises(WebhookVerificationError):
        verify([HMAC_KEY], PAYLOAD, headers("v2," + HMAC_EXPECTED[3:]), now=TIMESTAMP)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_delivery_without_a_standard_header_is_refused(missing: str) -> None:
    h = headers(HMAC_EXPECTED)
    del h[missing]
    with pytest.raises(WebhookVerificationError):
        verify([HMAC_KEY], PAYLOAD, h, now=TIMESTAMP)


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_timestamp_outside_the_tolerance_is_refused_as_a_possible_replay(skew: int) -> None:
    with pytest.raises(WebhookVerificationError):
        verify([HMAC_KEY], PAYLOAD, headers(HMAC_EXPECTED), now=TIMESTAMP + skew)
    assert verify([HMAC_KEY], PAYLOAD, headers(HMAC_EXPECTED), now=TIMESTAMP + skew,
                  tolerance=None) == MSG_ID


def test_new_keys_have_the_standard_prefixes_and_sizes() -> None:
    secret = new_hmac_secret()
    assert secret.startswith(HMAC_PREFIX)
    assert len(base64.b64decode(secret.removeprefix(HMAC_PREFIX))) == 32
    private, public = new_ed25519_key()
    assert private.startswith(PRIVATE_PREFIX) and public.startswith(PUBLIC_PREFIX)
    assert len(base64.b64decode(public.removeprefix(PUBLIC_PREFIX))) == 32
    assert public_key_of(private) == public


def test_signing_needs_a_key() -> None:
    with pytest.raises(ValueError):
        sign([], MSG_ID, TIMESTAMP, PAYLOAD)
