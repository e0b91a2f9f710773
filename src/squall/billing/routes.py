"""POST /stripe/webhook: Stripe's ``customer.subscription.*`` events refresh the cached
billing periods. The signature is checked with the SDK against SQUALL_STRIPE_WEBHOOK_SECRET."""

from __future__ import annotations

from typing import Any

import stripe
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from squall.billing.periods import apply_subscription_event
from squall.billing.stripe_api import BillingUnavailable, subscription_from
from squall.clock import now_ms
from squall.db import Database
from squall.errors import BadRequest
from squall.http import get_app_settings, get_database

router = APIRouter(tags=["billing"])


@router.post("/stripe/webhook", response_model=None, summary="Stripe events (signed by Stripe)")
async def stripe_webhook(request: Request) -> dict[str, Any]:
    secret = get_app_settings(request).stripe_webhook_secret
    if not secret:
        raise BadRequest("Stripe webhooks are not configured on this server")
    payload = await request.body()
    try:
        event = stripe.Webhook.construct_event(payload, request.headers.get("stripe-signature"), secret)
    except (stripe.SignatureVerificationError, ValueError):
        raise BadRequest("Invalid Stripe signature") from None
    if not str(event.type).startswith("customer.subscription."):
        return {"received": True, "applied": 0}
    try:
        subscription = subscription_from(event.data.object.to_dict())
    except BillingUnavailable as exc:
        raise BadRequest(exc.message) from None
    db: Database = get_database(request)

    def apply() -> int:
        with db.write() as session:
            return apply_subscription_event(session, subscription, now=now_ms())

    return {"received": True, "applied": await run_in_threadpool(apply)}
