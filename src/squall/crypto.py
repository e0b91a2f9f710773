"""Secrets at rest: AES-256-GCM under a key derived from ``SQUALL_SECRET_KEY`` with HKDF and a
purpose label, so each kind of secret (a key's cookies, its storage credentials) has a key of
its own and a sealed value cannot be opened as another kind. ``context`` (the owner's id) is
authenticated too: a value copied to another owner's row does not open."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_NONCE_BYTES = 12


class SealedSecretError(Exception):
    """A sealed value did not open: another secret key, another purpose or owner, or tampering."""


class SecretBox:
    def __init__(self, secret_key: str, purpose: str) -> None:
        if not secret_key:
            raise ValueError("a secret key is needed to seal secrets")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"squall:{purpose}".encode())
        self._aead = AESGCM(derived.derive(secret_key.encode()))

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        if sealed[:1] != _VERSION:
            raise SealedSecretError("unknown sealed-secret format")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, context.encode())
        except InvalidTag:
            raise SealedSecretError("the secret does not open with this key") from None
