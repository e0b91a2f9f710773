"""POST /stripe/webhook: Stripe's ``customer.subscription.*`` events make the keys on that
subscription fetch their period again (events can arrive late or out of order, so their own
copy of the period is not trusted). The signature is checked with the SDK against
SQUALL_STRIPE_WEBHOOK_SECRET."""

from __future__ import annotations

from typing import Any

import stripe
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from squall.api.deps import WriteTx, get_app_settings
from squall.api.routing import TransactionalRoute
from squall.billing.periods import mark_changed
from squall.errors import InvalidInput, NotFound

router = APIRouter(tags=["billing"], route_class=TransactionalRoute)


@router.post("/stripe/webhook", response_model=None, summary="Stripe events (signed by Stripe)")
async def stripe_webhook(request: Request, tx: WriteTx) -> dict[str, Any]:
    secret = get_app_settings(request).stripe_webhook_secret
    if not secret:
        raise NotFound("Stripe webhooks are not configured on this server")
    payload = await request.body()
    try:
        event = stripe.Webhook.construct_event(payload, request.headers.get("stripe-signature"), secret)
    except (stripe.SignatureVerificationError, ValueError):
        raise InvalidInput("Invalid Stripe signature") from None
    if not str(event.type).startswith("customer.subscription."):
        return {"received": True, "refreshing": 0}
    subscription_id = str(event.data.object.to_dict().get("id") or "")
    marked = await run_in_threadpool(lambda: mark_changed(tx.session, subscription_id))
    return {"received": True, "refreshing": marked}
