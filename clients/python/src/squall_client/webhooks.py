"""Checking a webhook from Squall before trusting it. Squall signs per Standard Webhooks
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` headers; HMAC-SHA256 with the
key's ``whsec_…`` secret), so the check is the ``standardwebhooks`` package's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook
from standardwebhooks.webhooks import WebhookVerificationError as LibraryVerificationError

from squall_client.errors import WebhookVerificationError


def verify_webhook(body: bytes | str, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    """The event (parsed JSON) if ``body`` was signed with ``secret`` less than five minutes
    ago; ``WebhookVerificationError`` otherwise. Pass the body exactly as received (bytes),
    not re-serialised JSON. During a secret rotation Squall sends two signatures; either
    secret verifies. Deduplicate on ``headers["webhook-id"]``: delivery is at least once."""
    try:
        verifier = Webhook(secret)
    except (EmptyWebhookSecretError, ValueError) as error:
        raise ValueError("The webhook secret is empty or not a whsec_… secret") from error
    plain_headers = {str(name).lower(): str(value) for name, value in headers.items()}
    try:
        event = verifier.verify(body, plain_headers)
    except LibraryVerificationError as error:
        raise WebhookVerificationError(f"Webhook rejected: {error}") from error
    except ValueError as error:  # a malformed signature header or a body that is not JSON
        raise WebhookVerificationError(f"Webhook rejected: malformed ({error})") from error
    if not isinstance(event, dict):
        raise WebhookVerificationError("Webhook rejected: the body is not a JSON object")
    return event
