"""Signed checkpoints (audit/checkpoints.py): C2SP tlog-checkpoint bodies in C2SP signed notes.

The worked example below (EXAMPLE_*) is meant to be copied into the documentation: a fixed key, a
fixed time and the exact note it gives. The key is the RFC 8032 §7.1 TEST 1 key (a published
example key — never use it for real), so its public key is checked against the RFC; its root is
the RFC 9162 reference tree of 8 leaves (tests/unit/test_merkle.py, ROOTS[7]).

Independent checks: the key id is recomputed here with hashlib from the signed-note definition; the
signature is verified here with ``cryptography`` directly; and the generic note layer reproduces,
byte for byte, the signed note and verifier key published in golang.org/x/mod/sumdb/note (package
documentation, "PeterNeumann").
"""

from __future__ import annotations

import ast
import base64
import hashlib
import os
import pickle
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.checkpoints import (
    EMPTY_ROOT,
    MAX_SIGNATURES,
    MAX_TREE_SIZE,
    BadSignature,
    Checkpoint,
    InsecureKeyFile,
    KeyFileError,
    KeyNotYetValid,
    KeyValidity,
    MalformedCheckpoint,
    MalformedKey,
    RevokedKey,
    Signature,
    Signer,
    UnknownKey,
    WrongOrigin,
    add_signature,
    encode_vkey,
    generate_key,
    key_id,
    load_signer,
    parse,
    parse_vkey,
    sign,
    sign_note,
    split_note,
    valid_name,
    verify,
    verify_detailed,
    write_private_key,
)

# ---------------------------------------------------------------------------------------------
# The worked example
# ---------------------------------------------------------------------------------------------

EXAMPLE_NAME = "jiangsu-consortia.example/ledger"
EXAMPLE_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
EXAMPLE_PUBLIC_KEY = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
EXAMPLE_KEY_ID = 0x88BE0E12
EXAMPLE_VKEY = "jiangsu-consortia.example/ledger+88be0e12+AddamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea"
EXAMPLE_ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
EXAMPLE_TIME = datetime(2026, 11, 20, 8, 30, 0, tzinfo=UTC)
EXAMPLE_BODY = (
    "jiangsu-consortia.example/ledger\n"
    "8\n"
    "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    "time 2026-11-20T08:30:00Z\n"
)
EXAMPLE_SIGNATURE_LINE = (
    "— jiangsu-consortia.example/ledger "
    "iL4OEizsi/Y5DdYPLflV8Xu7WG4LriHAY52WxatuXt0dvCOFnz4IhhyJWR7hEba+WDhTyM5O2lNWD0NaCKWk9MEwpwU=\n"
)
EXAMPLE_NOTE = EXAMPLE_BODY + "\n" + EXAMPLE_SIGNATURE_LINE

# The rotation partner: RFC 8032 §7.1 TEST 2, under the same name (a rotated key keeps the name).
NEXT_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
NEXT_PUBLIC_KEY = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
NEXT_VKEY = "jiangsu-consortia.example/ledger+cab12857+AT1AF8PoQ4lakrcKp00bfrycmCzPLsSWjMDNVfEq9GYM"
NEXT_SIGNATURE_LINE = (
    "— jiangsu-consortia.example/ledger "
    "yrEoV6oPDlh0ngCM3+HiusVR9SivTWcl9r7s8B0W6S83qs2xwlSMgxoMH42mw6A5N2S6LExODlvTE+iUTRyoxQ8nJQw=\n"
)

OTHER_SEED = bytes(range(32))


def signer(seed: bytes = EXAMPLE_SEED, name: str = EXAMPLE_NAME) -> Signer:
    return Signer(name, Ed25519PrivateKey.from_private_bytes(seed))


def example_checkpoint(size: int = 8, root: bytes = EXAMPLE_ROOT) -> Checkpoint:
    return Checkpoint(EXAMPLE_NAME, size, root, EXAMPLE_TIME)


def trusted(seed: bytes = EXAMPLE_SEED, valid_from: int = 0, revoked_at: int | None = None) -> KeyValidity:
    return signer(seed).validity(valid_from, revoked_at)


def with_body(note: str, body: str) -> str:
    """The note's signature lines under another body (what a forger would publish)."""
    text, _ = split_note(note)
    return body + note[len(text):]


def test_the_worked_example_is_byte_for_byte_the_documented_note() -> None:
    key = signer()
    assert key.public_key == EXAMPLE_PUBLIC_KEY  # RFC 8032 §7.1 TEST 1
    assert key.key_id == EXAMPLE_KEY_ID
    assert key.vkey == EXAMPLE_VKEY
    checkpoint = example_checkpoint()
    assert checkpoint.body == EXAMPLE_BODY
    assert sign(checkpoint, key) == EXAMPLE_NOTE
    raw = EXAMPLE_NOTE.encode("utf-8")
    assert raw.count(b"\n\n") == 1
    body, signature_line = raw.split(b"\n\n")
    assert body + b"\n" == EXAMPLE_BODY.encode("ascii")
    assert signature_line.startswith(b"\xe2\x80\x94 jiangsu-consortia.example/ledger ")  # U+2014, space
    assert signature_line.endswith(b"=\n")
    assert verify(EXAMPLE_NOTE, {KeyValidity.from_vkey(EXAMPLE_VKEY)}) == checkpoint


def test_the_example_signature_verifies_with_cryptography_directly() -> None:
    encoded = EXAMPLE_SIGNATURE_LINE.removeprefix("— " + EXAMPLE_NAME + " ").removesuffix("\n")
    raw = base64.b64decode(encoded, validate=True)
    assert len(raw) == 4 + 64
    assert int.from_bytes(raw[:4], "big") == EXAMPLE_KEY_ID
    Ed25519PublicKey.from_public_bytes(EXAMPLE_PUBLIC_KEY).verify(raw[4:], EXAMPLE_BODY.encode())


def test_key_id_matches_an_independent_computation() -> None:
    def independent(name: str, public_key: bytes) -> int:
        digest = hashlib.sha256(name.encode() + b"\x0a" + b"\x01" + public_key).digest()
        return (digest[0] << 24) | (digest[1] << 16) | (digest[2] << 8) | digest[3]

    for seed, public_key in ((EXAMPLE_SEED, EXAMPLE_PUBLIC_KEY), (NEXT_SEED, NEXT_PUBLIC_KEY)):
        assert signer(seed).key_id == independent(EXAMPLE_NAME, public_key)
        assert key_id(EXAMPLE_NAME, public_key) == independent(EXAMPLE_NAME, public_key)
    assert independent(EXAMPLE_NAME, EXAMPLE_PUBLIC_KEY) == EXAMPLE_KEY_ID
    assert key_id("another.example/log", EXAMPLE_PUBLIC_KEY) != EXAMPLE_KEY_ID  # the name is hashed in
    vkey_name, vkey_hex, vkey_key = EXAMPLE_VKEY.split("+", 2)
    assert vkey_name == EXAMPLE_NAME
    assert int(vkey_hex, 16) == EXAMPLE_KEY_ID
    assert base64.b64decode(vkey_key) == b"\x01" + EXAMPLE_PUBLIC_KEY


def test_the_note_layer_reproduces_the_sumdb_note_example() -> None:
    # golang.org/x/mod/sumdb/note, package documentation: signer key, verifier key, signed note.
    skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    text = ("If you think cryptography is the answer to your problem,\n"
            "then you don't know what your problem is.\n")
    expected = text + ("\n— PeterNeumann "
                       "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
    seed = base64.b64decode(skey.split("+", 4)[4])[1:]
    go = signer(seed, "PeterNeumann")
    assert go.vkey == vkey
    assert parse_vkey(vkey) == ("PeterNeumann", 0xC74F20A3, go.public_key)
    assert sign_note(text, [go]) == expected
    assert split_note(expected) == (text, [go.sign(text.encode())])


def test_the_c2sp_example_is_a_note_but_not_one_of_our_checkpoints() -> None:
    # c2sp.org/tlog-checkpoint: a three-line body; ours must carry the time extension line.
    note = ("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
            "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
            "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n")
    text, signatures = split_note(note)
    assert text.count("\n") == 3
    assert [(s.name, len(s.signature)) for s in signatures] == [("example.com/behind-the-sofa", 64)]
    with pytest.raises(MalformedCheckpoint, match="3 lines"):
        parse(note)


# ---------------------------------------------------------------------------------------------
# Round trip and tampering
# ---------------------------------------------------------------------------------------------


def test_round_trip() -> None:
    checkpoint = example_checkpoint(1_000_003, hashlib.sha256(b"head").digest())
    note = sign(checkpoint, signer())
    parsed, signatures = parse(note)
    assert parsed == checkpoint
    assert signatures == [signer().sign(checkpoint.body.encode())]
    assert signatures[0].line.encode() in note.encode()
    result = verify_detailed(note, [trusted()])
    assert result.checkpoint == checkpoint
    assert result.signed_by == (trusted(),)
    assert result.outside_validity == () and result.unknown == ()


def test_the_empty_tree_has_a_checkpoint() -> None:
    empty = example_checkpoint(0, EMPTY_ROOT)
    assert empty.body.splitlines()[1:3] == ["0", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="]
    assert verify(sign(empty, signer()), [trusted()]) == empty


@pytest.mark.parametrize("tamper", [
    pytest.param(lambda b: b.replace("jiangsu-consortia.example/ledger", "jiangsu-consortia.example/1edger"),
                 id="origin"),
    pytest.param(lambda b: b.replace("\n8\n", "\n9\n"), id="size-grown"),
    pytest.param(lambda b: b.replace("\n8\n", "\n7\n"), id="size-truncated"),
    pytest.param(lambda b: b.replace("XcnaeacG", "XcnaeacH"), id="root"),
    pytest.param(lambda b: b.replace("08:30:00Z", "08:30:01Z"), id="time"),
])
def test_a_tampered_body_is_a_bad_signature(tamper: Callable[[str], str]) -> None:
    body = tamper(EXAMPLE_BODY)
    assert body != EXAMPLE_BODY
    Checkpoint.from_body(body)  # still well formed: only the signature can tell
    with pytest.raises(BadSignature, match=r"jiangsu-consortia.example/ledger\+88be0e12"):
        verify(with_body(EXAMPLE_NOTE, body), [trusted()])


def test_a_tampered_signature_is_a_bad_signature() -> None:
    checkpoint, (signature,) = parse(EXAMPLE_NOTE)
    flipped = bytes([signature.signature[0] ^ 1]) + signature.signature[1:]
    for forged in (flipped, signature.signature[:-1], signature.signature + b"\x00", bytes(64)):
        note = checkpoint.body + "\n" + Signature(EXAMPLE_NAME, EXAMPLE_KEY_ID, forged).line
        with pytest.raises(BadSignature) as caught:
            verify(note, [trusted()])
        assert caught.value.key == trusted()


def test_a_signature_by_a_known_key_that_fails_refuses_the_whole_note() -> None:
    # signed-note: a known key's signature must verify, even when another trusted key signed too.
    both = sign(example_checkpoint(), signer(), signer(NEXT_SEED))
    broken = both.replace("yrEoV6oP", "yrEoV6oQ")
    with pytest.raises(BadSignature, match="cab12857"):
        verify(broken, [trusted(), trusted(NEXT_SEED)])
    # … but a broken signature by a key the verifier does not know is ignored.
    assert verify(broken, [trusted()]) == example_checkpoint()


def test_an_unknown_key_is_refused() -> None:
    note = sign(example_checkpoint(), signer(OTHER_SEED))
    with pytest.raises(UnknownKey) as caught:
        verify(note, [trusted()])
    assert [s.key_id for s in caught.value.signatures] == [signer(OTHER_SEED).key_id]
    assert "no signature by a known key" in str(caught.value)
    with pytest.raises(UnknownKey):
        verify(EXAMPLE_NOTE, [])


def test_a_key_is_known_only_by_its_name_and_id_together() -> None:
    # Same key and id under another name, or same name with another id: both are unknown keys.
    renamed = EXAMPLE_NOTE.replace("— jiangsu-consortia.example/ledger ", "— other.example/ledger ")
    with pytest.raises(UnknownKey):
        verify(renamed, [trusted()])
    with pytest.raises(UnknownKey):
        verify(EXAMPLE_NOTE, [trusted(NEXT_SEED)])


def test_the_origin_can_be_required() -> None:
    assert verify(EXAMPLE_NOTE, [trusted()], origin=EXAMPLE_NAME) == example_checkpoint()
    with pytest.raises(WrongOrigin):
        verify(EXAMPLE_NOTE, [trusted()], origin="another.example/ledger")


# ---------------------------------------------------------------------------------------------
# Key validity: revocation and rotation
# ---------------------------------------------------------------------------------------------


def test_a_revoked_key_signs_heads_up_to_its_revocation_only() -> None:
    key = trusted(revoked_at=5)
    for size in (4, 5):  # before the revocation, and the head that contains it
        note = sign(example_checkpoint(size, hashlib.sha256(b"%d" % size).digest()), signer())
        assert verify(note, [key]).size == size
    with pytest.raises(RevokedKey) as caught:
        verify(EXAMPLE_NOTE, [key])  # size 8 > 5
    assert (caught.value.key, caught.value.size) == (key, 8)
    assert str(caught.value) == ("checkpoint of size 8 signed by jiangsu-consortia.example/ledger+88be0e12, "
                                 "a key revoked at position 5")


def test_a_key_signs_no_head_before_it_was_added() -> None:
    with pytest.raises(KeyNotYetValid, match="valid only from position 9"):
        verify(EXAMPLE_NOTE, [trusted(valid_from=9)])
    assert verify(EXAMPLE_NOTE, [trusted(valid_from=8)]) == example_checkpoint()


def test_rotation_two_signatures() -> None:
    old, new = signer(), signer(NEXT_SEED)
    keys = {trusted(revoked_at=8), trusted(NEXT_SEED, valid_from=8)}
    # The head containing the rotation (position 8) is signed by both keys.
    both = sign(example_checkpoint(), old, new)
    assert both == EXAMPLE_NOTE + NEXT_SIGNATURE_LINE
    assert add_signature(EXAMPLE_NOTE, new) == both  # the new key countersigns the published head
    assert add_signature(both, new) == both  # a second countersignature replaces the first
    result = verify_detailed(both, keys)
    assert {k.vkey for k in result.signed_by} == {EXAMPLE_VKEY, NEXT_VKEY}
    assert result.outside_validity == () and result.unknown == ()
    # After the rotation only the new key counts; the old one's signature is reported, not trusted.
    later = example_checkpoint(9, hashlib.sha256(b"9").digest())
    result = verify_detailed(sign(later, old, new), keys)
    assert [k.vkey for k in result.signed_by] == [NEXT_VKEY]
    assert [k.vkey for k in result.outside_validity] == [EXAMPLE_VKEY]
    with pytest.raises(RevokedKey):
        verify(sign(later, old), keys)
    # A verifier that only knows the new key ignores the old signature.
    result = verify_detailed(both, [KeyValidity.from_vkey(NEXT_VKEY)])
    assert [k.vkey for k in result.signed_by] == [NEXT_VKEY]
    assert [s.label for s in result.unknown] == ["jiangsu-consortia.example/ledger+88be0e12"]


def test_repeated_signature_lines_are_reported_once() -> None:
    doubled = EXAMPLE_NOTE + EXAMPLE_SIGNATURE_LINE
    assert len(parse(doubled)[1]) == 2
    assert verify_detailed(doubled, [trusted()]).signed_by == (trusted(),)


def test_key_validity_records_are_checked() -> None:
    with pytest.raises(MalformedKey, match="does not match"):
        KeyValidity(EXAMPLE_KEY_ID ^ 1, EXAMPLE_NAME, EXAMPLE_PUBLIC_KEY)
    with pytest.raises(MalformedKey):
        KeyValidity(EXAMPLE_KEY_ID, EXAMPLE_NAME, EXAMPLE_PUBLIC_KEY[:31])
    with pytest.raises(ValueError, match="revoked_at_position"):
        trusted(valid_from=5, revoked_at=4)
    with pytest.raises(ValueError, match="valid_from_position"):
        trusted(valid_from=-1)
    with pytest.raises(ValueError, match="two different records"):
        verify(EXAMPLE_NOTE, [trusted(), trusted(revoked_at=3)])
    assert verify(EXAMPLE_NOTE, [trusted(), trusted()]) == example_checkpoint()  # duplicates are fine


def test_errors_survive_pickling() -> None:
    # A verification may run in another process (a background job); its error must come back whole.
    errors: list[Exception] = [UnknownKey(parse(EXAMPLE_NOTE)[1]), BadSignature(trusted()),
                               RevokedKey(trusted(revoked_at=5), 8), KeyNotYetValid(trusted(valid_from=9), 8)]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert vars(copy) == vars(error)


def test_verifier_keys() -> None:
    assert KeyValidity.from_vkey(EXAMPLE_VKEY, 3, 9) == trusted(valid_from=3, revoked_at=9)
    assert trusted().vkey == EXAMPLE_VKEY == encode_vkey(EXAMPLE_NAME, EXAMPLE_PUBLIC_KEY)
    name, hex_id, key64 = EXAMPLE_VKEY.split("+", 2)
    for bad in (
        f"{name}+{EXAMPLE_KEY_ID ^ 1:08x}+{key64}",  # wrong id
        f"{name}+88be0e1+{key64}",  # short id
        f"{name}+{hex_id}",  # no key
        f"+{hex_id}+{key64}",  # no name
        f"{name} x+{hex_id}+{key64}",  # space in the name
        f"{name}+{hex_id}+" + base64.b64encode(b"\x02" + EXAMPLE_PUBLIC_KEY).decode(),  # not Ed25519
        f"{name}+{hex_id}+" + base64.b64encode(b"\x01" + EXAMPLE_PUBLIC_KEY[:31]).decode(),
        f"{name}+{hex_id}+{key64[:-1]}",  # bad base64
    ):
        with pytest.raises(MalformedKey):
            parse_vkey(bad)


# ---------------------------------------------------------------------------------------------
# Malformed notes
# ---------------------------------------------------------------------------------------------

B, S = EXAMPLE_BODY, EXAMPLE_SIGNATURE_LINE
SIG64 = S.split(" ")[2].rstrip("\n")

MALFORMED: dict[str, str | bytes] = {
    "missing blank line": B + S,
    "no signature": B + "\n",
    "blank line after the signatures": B + "\n" + S + "\n",
    "no final newline": B + "\n" + S.rstrip("\n"),
    "CRLF": (B + "\n" + S).replace("\n", "\r\n"),
    "control character": B.replace("8\n", "8\t\n") + "\n" + S,
    "NUL": B + "\n" + S.replace(" iL4", " \x00iL4"),
    "invalid UTF-8": (B + "\n" + S).encode("utf-8").replace(b"\xe2\x80\x94", b"\xe2\x80"),
    "lone surrogate": B.replace("ledger\n", "ledger\ud800\n", 1) + "\n" + S,
    "bad base64 in signature": B + "\n" + S.replace("iL4OEizs", "iL4OEiz!"),
    "unpadded base64 in signature": B + "\n" + S.replace("=\n", "\n"),
    "non-canonical base64 in signature": B + "\n" + S.replace("wpwU=", "wpwV="),
    "signature of 4 bytes": B + "\n— " + EXAMPLE_NAME + " iL4OEg==\n",
    "hyphen instead of em dash": B + "\n" + S.replace("—", "-"),
    "en dash instead of em dash": B + "\n" + S.replace("—", "–"),
    "no space after the dash": B + "\n" + S.replace("— ", "—"),
    "two spaces after the dash": B + "\n" + S.replace("— ", "—  "),
    "two spaces before the signature": B + "\n" + S.replace(" iL4", "  iL4"),
    "space at the end of the signature line": B + "\n" + S.replace("=\n", "= \n"),
    "space before the dash": B + "\n " + S,
    "key name with a plus": B + "\n" + S.replace("example/ledger", "example/led+ger"),
    "signature line without a name": B + "\n— " + SIG64 + "\n",
    f"{MAX_SIGNATURES + 1} signatures": B + "\n" + S * (MAX_SIGNATURES + 1),
}

MALFORMED_BODIES: dict[str, str] = {
    "non-decimal size": B.replace("\n8\n", "\n8a\n"),
    "hex size": B.replace("\n8\n", "\n0x8\n"),
    "leading zero": B.replace("\n8\n", "\n08\n"),
    "plus sign": B.replace("\n8\n", "\n+8\n"),
    "negative size": B.replace("\n8\n", "\n-1\n"),
    "underscore in size": B.replace("\n8\n", "\n1_0\n"),
    "full-width digit": B.replace("\n8\n", "\n８\n"),
    "size too large": B.replace("\n8\n", f"\n{MAX_TREE_SIZE + 1}\n"),
    "space before the size": B.replace("\n8\n", "\n 8\n"),
    "space after the size": B.replace("\n8\n", "\n8 \n"),
    "empty size": B.replace("\n8\n", "\n\n"),
    "space after the origin": B.replace("ledger\n", "ledger \n"),
    "space in the origin": B.replace("example/ledger", "example/ ledger"),
    "no-break space in the origin": B.replace("example/ledger", "example/\u00a0ledger"),
    "empty origin": B.replace(EXAMPLE_NAME, ""),
    "origin with a plus": B.replace("example/ledger", "example/led+ger"),
    "bad base64 root": B.replace("XcnaeacG", "Xcnaeac!"),
    "unpadded root": B.replace("Qyg=", "Qyg"),
    "hex root": B.replace("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=", EXAMPLE_ROOT.hex()),
    "31-byte root": B.replace("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
                              base64.b64encode(EXAMPLE_ROOT[:31]).decode()),
    "space after the root": B.replace("Qyg=\n", "Qyg= \n"),
    "empty tree with another root": B.replace("\n8\n", "\n0\n"),
    "no time line": B.replace("time 2026-11-20T08:30:00Z\n", ""),
    "extra extension line": B + "note hello\n",
    "empty line in the body": B.replace("\n8\n", "\n\n8\n"),
    "two spaces in the time line": B.replace("time ", "time  "),
    "space after the time": B.replace("00Z\n", "00Z \n"),
    "Time, capitalised": B.replace("time ", "Time "),
    "time without its keyword": B.replace("time ", ""),
    "time with an offset": B.replace("08:30:00Z", "16:30:00+08:00"),
    "time with a fraction": B.replace("08:30:00Z", "08:30:00.5Z"),
    "lower-case t and z": B.replace("2026-11-20T08:30:00Z", "2026-11-20t08:30:00z"),
    "space instead of T": B.replace("20T08", "20 08"),
    "impossible date": B.replace("2026-11-20", "2026-02-30"),
    "leap second": B.replace("08:30:00", "23:59:60"),
    "time as a Unix timestamp": B.replace("2026-11-20T08:30:00Z", "1795163400"),
}


@pytest.mark.parametrize("note", [pytest.param(v, id=k) for k, v in MALFORMED.items()])
def test_malformed_notes_are_refused(note: str | bytes) -> None:
    with pytest.raises(MalformedCheckpoint):
        parse(note)
    with pytest.raises(MalformedCheckpoint):
        verify(note, [trusted()])


@pytest.mark.parametrize("body", [pytest.param(v, id=k) for k, v in MALFORMED_BODIES.items()])
def test_malformed_bodies_are_refused(body: str) -> None:
    assert body != B
    with pytest.raises(MalformedCheckpoint):
        Checkpoint.from_body(body)
    with pytest.raises(MalformedCheckpoint):
        verify(with_body(EXAMPLE_NOTE, body), [trusted()])


def test_a_malformed_body_is_refused_even_when_it_is_validly_signed() -> None:
    body = B + "note hello\n"
    with pytest.raises(MalformedCheckpoint):
        verify(sign_note(body, [signer()]), [trusted()])


def test_checkpoints_are_checked_when_built() -> None:
    for size in (-1, MAX_TREE_SIZE + 1, True, 8.0):
        with pytest.raises(MalformedCheckpoint):
            Checkpoint(EXAMPLE_NAME, size, EXAMPLE_ROOT, EXAMPLE_TIME)  # type: ignore[arg-type]
    for origin in ("", "a b", "a+b", "a\nb"):
        with pytest.raises(MalformedCheckpoint):
            Checkpoint(origin, 8, EXAMPLE_ROOT, EXAMPLE_TIME)
    with pytest.raises(MalformedCheckpoint):
        Checkpoint(EXAMPLE_NAME, 8, EXAMPLE_ROOT[:31], EXAMPLE_TIME)
    with pytest.raises(MalformedCheckpoint, match="empty tree"):
        Checkpoint(EXAMPLE_NAME, 0, EXAMPLE_ROOT, EXAMPLE_TIME)
    with pytest.raises(MalformedCheckpoint, match="timezone-aware"):
        Checkpoint(EXAMPLE_NAME, 8, EXAMPLE_ROOT, datetime(2026, 11, 20, 8, 30))


def test_time_is_kept_in_utc_whole_seconds() -> None:
    nanjing = timezone(timedelta(hours=8))
    local = datetime(2026, 11, 20, 16, 30, 0, 999_999, nanjing)
    checkpoint = Checkpoint(EXAMPLE_NAME, 8, EXAMPLE_ROOT, local)
    assert checkpoint == example_checkpoint()
    assert checkpoint.time.utcoffset() == timedelta(0)
    assert checkpoint.body == EXAMPLE_BODY


def test_signing_checks_its_input() -> None:
    with pytest.raises(ValueError, match="twice"):
        sign(example_checkpoint(), signer(), signer())
    with pytest.raises(MalformedCheckpoint):
        sign_note("no newline", [signer()])
    with pytest.raises(ValueError):
        sign_note("text\n", [])
    with pytest.raises(MalformedKey):
        signer(name="two words")
    assert "PRIVATE" not in repr(signer()) and repr(signer()) == f"Signer({EXAMPLE_NAME}+88be0e12)"


# ---------------------------------------------------------------------------------------------
# Key files
# ---------------------------------------------------------------------------------------------


def test_generate_write_load(tmp_path: Path) -> None:
    pem, vkey = generate_key(EXAMPLE_NAME)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    path = tmp_path / "signing.pem"
    write_private_key(path, pem)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == pem
    assert [p.name for p in tmp_path.iterdir()] == ["signing.pem"]  # no temporary file left behind
    loaded = load_signer(path, EXAMPLE_NAME)
    assert loaded.vkey == vkey
    checkpoint = example_checkpoint()
    assert verify(sign(checkpoint, loaded), [KeyValidity.from_vkey(vkey)]) == checkpoint


def test_write_private_key_ignores_a_permissive_umask(tmp_path: Path) -> None:
    pem, _ = generate_key(EXAMPLE_NAME)
    old = os.umask(0)
    try:
        write_private_key(tmp_path / "k.pem", pem)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600


def test_write_private_key_never_overwrites(tmp_path: Path) -> None:
    first, _ = generate_key(EXAMPLE_NAME)
    second, _ = generate_key(EXAMPLE_NAME)
    path = tmp_path / "signing.pem"
    write_private_key(path, first)
    with pytest.raises(FileExistsError):
        write_private_key(path, second)
    assert path.read_bytes() == first
    dangling = tmp_path / "dangling.pem"
    dangling.symlink_to(tmp_path / "elsewhere.pem")
    with pytest.raises(FileExistsError):
        write_private_key(dangling, second)
    assert not (tmp_path / "elsewhere.pem").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling.pem", "signing.pem"]


def test_write_private_key_stores_only_ed25519_keys(tmp_path: Path) -> None:
    ec = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    for pem in (b"not a key", ec):
        with pytest.raises(KeyFileError):
            write_private_key(tmp_path / "k.pem", pem)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o644, 0o666])
def test_load_signer_refuses_group_or_other_permissions(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.pem"
    write_private_key(path, generate_key(EXAMPLE_NAME)[0])
    path.chmod(mode)
    with pytest.raises(InsecureKeyFile, match=f"mode {mode:04o}"):
        load_signer(path, EXAMPLE_NAME)


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_load_signer_accepts_owner_only_permissions(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.pem"
    write_private_key(path, generate_key(EXAMPLE_NAME)[0])
    path.chmod(mode)
    assert load_signer(path, EXAMPLE_NAME).name == EXAMPLE_NAME


def test_load_signer_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "signing.pem"
    write_private_key(target, generate_key(EXAMPLE_NAME)[0])
    link = tmp_path / "current.pem"
    link.symlink_to(target)
    with pytest.raises(InsecureKeyFile, match="symbolic link"):
        load_signer(link, EXAMPLE_NAME)
    assert load_signer(target, EXAMPLE_NAME).name == EXAMPLE_NAME


def test_load_signer_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(InsecureKeyFile, match="not a regular file"):
        load_signer(tmp_path, EXAMPLE_NAME)
    with pytest.raises(KeyFileError, match=r"cannot read the key file .*No such file"):
        load_signer(tmp_path / "missing.pem", EXAMPLE_NAME)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    garbage.chmod(0o600)
    with pytest.raises(KeyFileError):
        load_signer(garbage, EXAMPLE_NAME)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    encrypted.chmod(0o600)
    with pytest.raises(KeyFileError):
        load_signer(encrypted, EXAMPLE_NAME)


def test_load_signer_from_a_known_seed(tmp_path: Path) -> None:
    pem = Ed25519PrivateKey.from_private_bytes(EXAMPLE_SEED).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_private_key(tmp_path / "k.pem", pem)
    loaded = load_signer(str(tmp_path / "k.pem"), EXAMPLE_NAME)
    assert loaded.vkey == EXAMPLE_VKEY
    assert sign(example_checkpoint(), loaded) == EXAMPLE_NOTE


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

origins = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="+"),
    min_size=1, max_size=40,
).filter(valid_name)
roots = st.binary(min_size=32, max_size=32)
times = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.just(UTC))


@st.composite
def checkpoints(draw: st.DrawFn) -> Checkpoint:
    size = draw(st.one_of(st.just(0), st.integers(1, 40), st.integers(1, MAX_TREE_SIZE)))
    return Checkpoint(draw(origins), size, EMPTY_ROOT if size == 0 else draw(roots), draw(times))


@settings(deadline=None)  # Ed25519 per example; timing varies on a loaded machine
@given(checkpoints())
def test_property_round_trip(checkpoint: Checkpoint) -> None:
    note = sign(checkpoint, signer())
    assert parse(note) == (checkpoint, [signer().sign(checkpoint.body.encode())])
    assert Checkpoint.from_body(checkpoint.body) == checkpoint
    assert verify(note.encode("utf-8"), [trusted()]) == checkpoint


@settings(deadline=None)
@given(checkpoints(), st.data())
def test_property_any_change_to_the_body_is_refused(checkpoint: Checkpoint, data: st.DataObject) -> None:
    note = sign(checkpoint, signer())
    body = checkpoint.body
    at = data.draw(st.integers(0, len(body) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != body[at]))
    tampered = with_body(note, body[:at] + replacement + body[at + 1:])
    with pytest.raises((BadSignature, MalformedCheckpoint)):
        verify(tampered, [trusted()])


# ---------------------------------------------------------------------------------------------
# Purity: the module is usable by an offline verifier
# ---------------------------------------------------------------------------------------------

MODULE = Path(__file__).resolve().parents[2] / "audit" / "checkpoints.py"


def test_the_module_imports_only_the_standard_library_and_cryptography() -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(MODULE.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    third_party = {m for m in imported - {"cryptography", "__future__"} if m not in sys.stdlib_module_names}
    assert third_party == set()


def test_importing_the_module_loads_no_project_infrastructure() -> None:
    code = ("import sys, audit.checkpoints\n"
            "print(sorted(m for m in ('eventsourcing', 'sqlite3', 'psycopg', 'domain', 'projections', 'api',"
            " 'audit.chain', 'audit.store') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=MODULE.parents[1], check=True)
    assert out.stdout.strip() == "[]"
