"""StripeStandIn: a local stand-in for the few Stripe API calls Squall makes, served over
real HTTP (uvicorn, port 0) to the official SDK.

A stand-in, not a Stripe: the ``localstripe`` package has no Billing Meters, keeps a
subscription's period fixed from its start (so a rollover cannot happen) and answers in the
pre-2025 shape, and the SDK talks to one base address, so one server answers every call.
What it models is what Squall relies on: a subscription with its current period on the
item (API 2025-03-31 and later), meter events deduplicated by ``identifier`` (a duplicate is
refused with an error, as Stripe enforces uniqueness), and meter event summaries summed over
[start_time, end_time). Knobs: ``hang`` (every request waits until ``release()``),
``hang_meter_event_after_recording`` (the next meter event is recorded, then its answer never
comes: Stripe got it, the sender does not know), ``requests`` (a log of the paths).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

METER_ID = "mtr_standin"


@dataclass
class MeterEvent:
    identifier: str
    customer: str
    value: int
    timestamp: int


class StripeStandIn:
    def __init__(self, event_name: str = "squall_storage_bytes") -> None:
        self.event_name = event_name
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.events: list[MeterEvent] = []
        self.requests: list[str] = []
        self.identifiers_sent: list[str] = []  # of every meter event request, duplicates too
        self.hang = False
        self.hang_meter_event_after_recording = False
        self._released = threading.Event()
        self.arrived = threading.Condition()
        app = Starlette(routes=[
            Route("/v1/subscriptions/{id}", self._subscription),
            Route("/v1/billing/meter_events", self._meter_event, methods=["POST"]),
            Route("/v1/billing/meters", self._meters),
            Route("/v1/billing/meters/{id}/event_summaries", self._summaries),
        ])  # fmt: skip
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    # --- test controls ----------------------------------------------------------------------
    def subscribe(self, subscription_id: str, customer: str, start_s: int, end_s: int) -> dict[str, Any]:
        self.subscriptions[subscription_id] = {
            "id": subscription_id, "object": "subscription", "customer": customer, "status": "active",
            "items": {"object": "list", "data": [{
                "id": f"si_{subscription_id}", "object": "subscription_item",
                "current_period_start": start_s, "current_period_end": end_s,
                "price": {"id": "price_storage", "object": "price", "recurring": {"interval": "month", "interval_count": 1}},
            }], "has_more": False, "url": "/v1/subscription_items"},
        }  # fmt: skip
        return self.subscriptions[subscription_id]

    def release(self) -> None:
        self._released.set()

    def wait_for_meter_events(self, count: int, timeout: float = 30) -> None:
        with self.arrived:
            self.arrived.wait_for(lambda: self.requests.count("POST meter_events") >= count, timeout=timeout)

    def total(self, customer: str) -> int:
        return sum(e.value for e in self.events if e.customer == customer)

    # --- the API ------------------------------------------------------------------------------
    async def _enter(self, what: str) -> None:
        with self.arrived:
            self.requests.append(what)
            self.arrived.notify_all()
        if self.hang:
            await _wait(self._released)

    async def _subscription(self, request: Request) -> JSONResponse:
        await self._enter("GET subscription")
        found = self.subscriptions.get(request.path_params["id"])
        if found is None:
            return _error(404, "resource_missing", f"No such subscription: '{request.path_params['id']}'")
        return JSONResponse(found)

    async def _meter_event(self, request: Request) -> JSONResponse:
        await self._enter("POST meter_events")
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("event_name") != self.event_name:
            return _error(400, "resource_missing", f"No active meter for event name {form.get('event_name')}")
        identifier = form["identifier"]
        self.identifiers_sent.append(identifier)
        if any(e.identifier == identifier for e in self.events):
            return _error(
                400, "duplicate_meter_event", f"An event with identifier {identifier} already exists."
            )
        self.events.append(MeterEvent(identifier, form["payload[stripe_customer_id]"], int(form["payload[value]"]),
                                      int(form.get("timestamp") or time.time())))  # fmt: skip
        if self.hang_meter_event_after_recording:
            self.hang_meter_event_after_recording = False
            await _wait(self._released)
        return JSONResponse(
            {"object": "billing.meter_event", "identifier": identifier, "event_name": self.event_name}
        )

    async def _meters(self, request: Request) -> JSONResponse:
        await self._enter("GET meters")
        meter = {"id": METER_ID, "object": "billing.meter", "event_name": self.event_name, "status": "active"}
        return JSONResponse(
            {"object": "list", "data": [meter], "has_more": False, "url": "/v1/billing/meters"}
        )

    async def _summaries(self, request: Request) -> JSONResponse:
        await self._enter("GET event_summaries")
        q = request.query_params
        start, end, customer = int(q["start_time"]), int(q["end_time"]), q["customer"]
        total = sum(e.value for e in self.events if e.customer == customer and start <= e.timestamp < end)
        summary = {"id": "mtrusg_1", "object": "billing.meter_event_summary", "aggregated_value": total,
                   "start_time": start, "end_time": end, "meter": METER_ID, "livemode": False}  # fmt: skip
        url = f"/v1/billing/meters/{METER_ID}/event_summaries"
        return JSONResponse({"object": "list", "data": [summary], "has_more": False, "url": url})

    def __enter__(self) -> StripeStandIn:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def signed_event(payload: dict[str, Any], secret: str) -> tuple[bytes, str]:
    """A webhook body and its ``Stripe-Signature`` header, made the way Stripe makes them
    (``t=<unix>,v1=<HMAC-SHA256 of "t.body">``)."""
    body = json.dumps(payload).encode()
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={stamp},v1={digest}"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": "invalid_request_error", "code": code, "message": message}}, status_code=status
    )


async def _wait(event: threading.Event) -> None:
    import anyio

    await anyio.to_thread.run_sync(event.wait, 60)
