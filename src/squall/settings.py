"""Settings from the environment (prefix ``SQUALL_``) and an optional ``.env`` file."""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from squall.units import MB
from squall.ytdlp_options import js_runtime_name, proxy_list, ytdlp_options_of

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated CIDRs. Raises ValueError naming a bad entry."""
    parsed = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        try:
            parsed.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"'{entry}' is not a network such as 10.0.0.0/8 or 10.1.2.3/32") from None
    return tuple(parsed)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SQUALL_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./squall-data")
    database_url: str = ""
    storage: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    # Bucket faults (5xx, throttling, resets, stalls): tries of one request in all, with backoff,
    # and how long one waits for an answer (connecting: at most 10 s of it).
    s3_max_attempts: int = Field(default=5, ge=1, le=20)
    s3_timeout_seconds: float = Field(default=30.0, gt=0)
    public_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    allow_private_urls: bool = False
    # Private networks sources and webhooks may reach anyway, comma-separated CIDRs.
    allowed_private_networks: str = ""
    default_reservation_mb: int = Field(default=256, ge=0)

    auth_cache_seconds: float = Field(default=5.0, ge=0)
    api_threads: int = Field(default=4, ge=1)

    # Queue tuning: a lease shorter than a heartbeat interval would let live jobs be reaped.
    lease_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    retry_backoff_seconds: float = Field(default=5.0, ge=0)
    poll_seconds: float = Field(default=0.5, gt=0)
    download_timeout_seconds: float = Field(default=3600.0, gt=0)
    socket_timeout_seconds: float = Field(default=20.0, gt=0)
    # Live recordings: the longest any recording runs, and the longest wait_for_video waits.
    live_max_seconds: float = Field(default=43200.0, gt=0)
    live_wait_seconds: float = Field(default=21600.0, ge=0)

    # Webhooks: sender threads per worker process, and the wait before each retry (seconds;
    # the Standard Webhooks example schedule, about three days in all).
    webhook_concurrency: int = Field(default=4, ge=0)
    webhook_timeout_seconds: float = Field(default=30.0, gt=0)
    webhook_retry_seconds: str = "5,300,1800,7200,18000,36000,50400,72000,86400"

    # Delivery (/files/...): the on-disk cache of objects read from a remote (S3) backend.
    delivery_cache_mb: int = Field(default=1024, ge=0)

    # Stripe billing (stripe keys): the API, its webhook signing secret, and the meter's event.
    stripe_api_key: str = ""
    stripe_api_base: str = "https://api.stripe.com"
    stripe_webhook_secret: str = ""
    stripe_meter_event_name: str = "squall_storage_bytes"
    stripe_timeout_seconds: float = Field(default=3.0, gt=0)

    # Batches: how many entries a feed or playlist may expand to.
    batch_max_episodes: int = Field(default=500, ge=1)

    # yt-dlp in the downloader children: its JavaScript runtime ("": the Deno of the deno
    # wheel; a runtime's name, a path, or "none"), the operator's options (a JSON object),
    # cookies, outbound proxies and plugin folders (comma-separated), and doctor's age limit.
    js_runtime: str = ""
    ytdlp_options: str = ""
    cookies_file: Path | None = None
    proxies: str = ""
    proxy_backoff_seconds: float = Field(default=2.0, ge=0)
    ytdlp_plugin_dirs: str = ""
    ytdlp_max_age_days: int = Field(default=60, ge=1)
    # Opens GET /healthz?verbose=1 (as a Bearer token); unset: the verbose report is off.
    operator_token: str = ""

    @field_validator("ytdlp_options")
    @classmethod
    def _ytdlp_options_safe(cls, value: str) -> str:
        ytdlp_options_of(value)
        return value

    @field_validator("cookies_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("js_runtime")
    @classmethod
    def _js_runtime_known(cls, value: str) -> str:
        js_runtime_name(value)
        return value

    @field_validator("proxies")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        proxy_list(value)
        return value

    # Tenancy (issue 15): requests a minute per key unless the key has its own limit (unset:
    # unlimited); addresses (CIDRs) that may read /metrics without the operator token.
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    metrics_allow: str = ""

    @field_validator("allowed_private_networks", "metrics_allow")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("webhook_retry_seconds")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        try:
            if any(float(part) < 0 for part in value.split(",")):
                raise ValueError
        except ValueError:
            raise ValueError("must be comma-separated seconds, such as 5,300,1800") from None
        return value

    @property
    def webhook_retry_schedule(self) -> list[float]:
        return [float(part) for part in self.webhook_retry_seconds.split(",")]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'squall.db'}"

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"

    @property
    def delivery_cache_dir(self) -> Path:
        return self.data_dir / "delivery-cache"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def default_reservation_bytes(self) -> int:
        return self.default_reservation_mb * MB

    def resolved_secret_key(self) -> str:
        """The configured secret, or one generated once and kept in the data directory."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            staging = path.with_name(f".secret_key.{os.getpid()}")
            fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            try:  # link: appears whole or not at all, and the first process to start wins
                os.link(staging, path)
            except FileExistsError:
                pass
            finally:
                staging.unlink()
        self.secret_key = path.read_text().strip()
        return self.secret_key


@lru_cache
def get_settings() -> Settings:
    return Settings()
