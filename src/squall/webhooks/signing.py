"""Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 over
``{webhook-id}.{webhook-timestamp}.{body}``, sent as ``v1,<base64>``; several signatures,
space-separated, while a key's secret is being rotated."""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def signature_header(signing_secrets: list[str], msg_id: str, timestamp_s: int, body: str) -> str:
    at = datetime.fromtimestamp(timestamp_s, UTC)
    return " ".join(Webhook(secret).sign(msg_id, at, body) for secret in signing_secrets)
