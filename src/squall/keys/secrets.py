"""The secrets a key holds. API keys have ~238 bits of entropy, so a keyed SHA-256 (HMAC with
the server secret as pepper) is the right hash: a slow password hash would add latency to
every request and no security. Webhook signing secrets follow Standard Webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
WEBHOOK_SECRET_PREFIX = "whsec_"


def generate_secret() -> str:
    return "sk_" + "".join(secrets.choice(_ALPHABET) for _ in range(40))


def hash_key(api_key: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), api_key.encode(), hashlib.sha256).hexdigest()


def new_webhook_secret() -> str:
    """32 random bytes, base64, with the spec's ``whsec_`` prefix."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
