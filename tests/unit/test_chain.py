"""The link framing is unambiguous and stable: an outside auditor can reproduce it from
docs/ledger.md."""

from __future__ import annotations

import hashlib
import struct
import uuid

from hypothesis import given
from hypothesis import strategies as st

from audit.chain import GENESIS, TAG, Record, chain, frame, link_hash

OID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def test_frame_is_the_documented_byte_layout() -> None:
    state = b'{"a":1}'
    expected = (TAG + struct.pack(">Q", 7) + struct.pack(">I", 36) + str(OID).encode()
                + struct.pack(">Q", 3) + struct.pack(">I", 5) + b"topic"
                + struct.pack(">I", len(state)) + state + GENESIS)
    assert frame(7, OID, 3, "topic", state, GENESIS) == expected
    assert link_hash(7, OID, 3, "topic", state, GENESIS) == hashlib.sha256(expected).digest()


def test_uuid_as_hex_and_as_object_frame_identically() -> None:
    assert frame(1, OID.hex, 1, "t", b"s", GENESIS) == frame(1, OID, 1, "t", b"s", GENESIS)


def test_known_vector_stays_fixed() -> None:
    # The vector published in docs/ledger.md. If it changes, every ledger ever written stops
    # verifying: the framing is a contract with outside auditors.
    h = link_hash(1, OID, 1, "domain.consortium:Consortium.LeadUnitSelected", b"{}", GENESIS)
    assert h.hex() == "2ce06dc998da6e1cb8fb672a9a576f70bfdf8b4c66d45d20d91391da73d36b28"


@given(st.text(max_size=20), st.binary(max_size=40), st.text(max_size=20),
       st.binary(max_size=40))
def test_moving_bytes_between_fields_changes_the_hash(t1: str, s1: bytes, t2: str,
                                                      s2: bytes) -> None:
    same = (t1, s1) == (t2, s2)
    h1 = link_hash(1, OID, 1, t1, s1, GENESIS)
    h2 = link_hash(1, OID, 1, t2, s2, GENESIS)
    assert (h1 == h2) == same


def test_each_link_names_the_hash_before_it() -> None:
    records = [Record(p, OID, p, "t", b"x%d" % p) for p in (1, 2, 5)]  # gaps are allowed
    links = list(chain(records, GENESIS))
    assert [lk.position for lk in links] == [1, 2, 5]
    assert links[0].previous_hash == GENESIS
    assert links[1].previous_hash == links[0].hash
    assert links[2].previous_hash == links[1].hash
