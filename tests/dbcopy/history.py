"""A Squall on SQLite with months of life squeezed into a few days of a manual clock: keys of
every type (and a revoked one), completed and failed jobs, a feed batch, delivered webhooks,
rollups on three days and several hours, a stripe key's period and meter reports, an
Idempotency-Key answer, a download, a deleted file. Built once per session by the real app and
worker; ``answers`` records what its API said, for the copy to be held to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from squall.app import create_app
from squall.billing.refresher import PeriodRefresher
from squall.billing.reporter import MeterReporter
from squall.billing.stripe_api import StripeApi
from squall.clock import HOUR_MS, ManualClock
from squall.db import Database
from squall.keys.service import KeyLimits, create_key, revoke_key
from squall.settings import Settings
from squall.storage.local import LocalStorage
from squall.subscriptions import wire
from squall.webhooks.sender import WebhookSender
from squall.worker import Worker
from tests.support.helpers import drain
from tests.support.receiver import WebhookReceiver
from tests.support.server import MediaServer
from tests.support.stripe_standin import StripeStandIn

DAY_MS = 86_400_000
D1 = int(datetime(2026, 3, 10, 22, 0, tzinfo=UTC).timestamp() * 1000)  # late on 10 March
ANSWERED_AT = D1 + 3 * DAY_MS  # when both Squalls are asked
RANGE = {"startDate": "2026-03-08", "endDate": "2026-03-14"}
PATHS = ("/usage", "/dashboard/stats", "/dashboard/daily", "/usage/network", "/usage/storage",
         "/usage/transcoding", "/jobs")  # fmt: skip


@dataclass
class Source:
    settings: Settings  # SQUALL_DATA_DIR only: the default SQLite file and the generated secret
    keys: dict[str, str]  # name -> API key
    download_link: str  # a signed /files/... link, valid at ``link_at``
    link_at: int
    answers: dict[tuple[str, str], Any]  # (key name, path) -> JSON


def squall_settings(data_dir: Path, stripe: StripeStandIn, database_url: str = "") -> Settings:
    return Settings(
        data_dir=data_dir, database_url=database_url, allow_private_urls=True, default_reservation_mb=1,
        lease_seconds=3, heartbeat_seconds=0.5, retry_backoff_seconds=0, poll_seconds=0.05,
        socket_timeout_seconds=3, public_url="http://testserver", auth_cache_seconds=0,
        stripe_api_key="sk_test_squall", stripe_api_base=stripe.base, stripe_timeout_seconds=1,
    )  # fmt: skip


def ask(client: TestClient, key: str, path: str) -> Any:
    params = RANGE if path.startswith("/usage/") else {"limit": 100} if path == "/jobs" else {}
    response = client.get(path, headers={"x-api-key": key}, params=params)
    assert response.status_code == 200, (path, response.text)
    return response.json()


def answers(client: TestClient, keys: dict[str, str]) -> dict[tuple[str, str], Any]:
    return {(name, path): ask(client, key, path) for name, key in keys.items() for path in PATHS}


def submit(
    client: TestClient, key: str, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    response = client.post("/jobs", headers={"x-api-key": key, **(headers or {})}, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def build(data_dir: Path, media: MediaServer, stripe: StripeStandIn, receiver: WebhookReceiver) -> Source:
    settings = squall_settings(data_dir, stripe)
    clock = ManualClock(D1)
    db = wire(Database(settings.resolved_database_url))
    from squall.db.migrate import upgrade

    upgrade(settings.resolved_database_url)
    storage = LocalStorage(settings.storage_dir)
    stripe.subscribe("sub_move", "cus_move", D1 // 1000 - 3 * 86_400, D1 // 1000 + 27 * 86_400)
    secret = settings.resolved_secret_key()  # generated into the data directory
    keys, ids = {}, {}
    with db.write() as session:
        for name, kind, limits, sub in (
            ("unlimited", None, KeyLimits(), None),
            ("trial", "trial", KeyLimits(storage_limit_bytes=10**9, max_resolution=720), None),
            ("stripe", "stripe", KeyLimits(), "sub_move"),
            ("revoked", None, KeyLimits(), None),
        ):
            new = create_key(session, pepper=secret, name=name, key_type=kind, limits=limits,
                             stripe_subscription_id=sub)  # fmt: skip
            keys[name], ids[name] = new.api_key, new.id
        revoke_key(session, ids.pop("revoked"))
    del keys["revoked"]
    worker = Worker(settings, db=db, storage=storage, clock=clock)
    try:
        with TestClient(create_app(settings, db=db, storage=storage, clock=clock)) as client:
            hooked = submit(client, keys["unlimited"], url=media.url("media/tiny.mp4"), folder="day1",
                            webhook_url=receiver.url("done"))["job_id"]  # fmt: skip
            submit(
                client, keys["unlimited"], url=media.url("octet/notmedia.bin"), webhook_url=receiver.url("x")
            )
            submit(client, keys["unlimited"], url=media.url("status/404"))
            drain(worker)
            clock.advance(4 * HOUR_MS)  # 02:00 on 11 March: another day and hour
            feed = media.url("feed/show.rss?episodes=tiny.mp4,portrait.mp4")
            assert submit(client, keys["trial"], url=feed, folder="show")["total_episodes"] == 2
            submit(
                client, keys["stripe"], {"Idempotency-Key": "first-upload"}, url=media.url("media/tiny.mp4")
            )
            drain(worker)
            clock.advance(DAY_MS + 5 * HOUR_MS)  # 07:00 on 12 March
            submit(client, keys["stripe"], url=media.url("media/landscape720.mp4"), download_thumbnail=True,
                   priority=8)  # fmt: skip
            drain(worker)
            link = client.get(f"/jobs/{hooked}", headers={"x-api-key": keys["unlimited"]}).json()[
                "download_url"
            ]
            link_at = clock.now
            assert client.get(link.removeprefix("http://testserver")).status_code == 200  # a metered download
            WebhookSender(db, settings, owner="history", clock=clock).send_due()
            reporter = MeterReporter(db, settings, StripeApi(settings), clock)
            while reporter.send_due():
                pass
            PeriodRefresher(db, StripeApi(settings), clock).refresh_due()
            first_trial = ask(client, keys["trial"], "/jobs")["jobs"][-1]["id"]
            deleted = client.delete(f"/jobs/{first_trial}/file", headers={"x-api-key": keys["trial"]})
            assert deleted.status_code == 200, deleted.text
            clock.now = ANSWERED_AT
            recorded = answers(client, keys)
    finally:
        db.dispose()
    return Source(settings=settings, keys=keys, download_link=link, link_at=link_at, answers=recorded)
