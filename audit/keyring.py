"""The checkpoint signing keys, kept as a ledger aggregate: adding, rotating and revoking a key
are themselves records in the hash chain, so a verifier knows which key was valid at which
position. Only public keys (vkeys) are recorded; private keys live in PEM files outside the
database."""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import Aggregate, event

#: The one keyring of a ledger.
KEYRING_ID = uuid.uuid5(uuid.NAMESPACE_URL, "https://consortia.jiangsu.example/signing-keyring")


class KeyringError(Exception):
    """A keyring command that cannot be recorded."""


class SigningKeyring(Aggregate):
    """Public signing keys of the ledger's checkpoints, with when they were added and revoked."""

    @staticmethod
    def create_id() -> uuid.UUID:
        return KEYRING_ID

    @event("Opened")
    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}

    def add_key(self, *, key_id: str, name: str, vkey: str, recorded_by: str) -> None:
        """Register a public key (hex key id, key name, vkey string)."""
        if key_id in self.keys:
            raise KeyringError(f"key {key_id} is already in the keyring")
        self._add(key_id=key_id, name=name, vkey=vkey, recorded_by=recorded_by)

    @event("KeyAdded")
    def _add(self, key_id: str, name: str, vkey: str, recorded_by: str) -> None:
        self.keys[key_id] = {"name": name, "vkey": vkey, "revoked": False}

    def revoke_key(self, *, key_id: str, reason: str, recorded_by: str) -> None:
        """Revoke a key: checkpoints it signs for larger trees are no longer trusted."""
        key = self.keys.get(key_id)
        if key is None:
            raise KeyringError(f"no key {key_id} in the keyring")
        if key["revoked"]:
            raise KeyringError(f"key {key_id} is already revoked")
        if not reason.strip():
            raise KeyringError("a revocation needs a reason")
        self._revoke(key_id=key_id, reason=reason, recorded_by=recorded_by)

    @event("KeyRevoked")
    def _revoke(self, key_id: str, reason: str, recorded_by: str) -> None:
        self.keys[key_id]["revoked"] = True

    def active(self) -> list[str]:
        return [k for k, v in self.keys.items() if not v["revoked"]]
