"""``POST/DELETE /user/cookies``: the key's own cookies (a Netscape cookie file as the body)
for its downloads and ``/metadata``. They are never returned."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from squall.api.deps import ClockDep, SettingsDep, WriteTx
from squall.api.routing import TransactionalRoute
from squall.errors import InvalidInput, NotFound
from squall.keys.auth import CurrentKey
from squall.keys.cookies import cookie_box, delete_cookies, save_cookies
from squall.pipeline.cookies import MAX_COOKIE_BYTES

router = APIRouter(tags=["cookies"], route_class=TransactionalRoute)


async def _cookie_text(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_COOKIE_BYTES:
        raise InvalidInput(f"The cookie file is larger than {MAX_COOKIE_BYTES // 1024} KB")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("Cookies must be UTF-8 text in the Netscape cookie file format") from None


CookieText = Annotated[str, Depends(_cookie_text)]


@router.post("/user/cookies", response_model=None, summary="Set this key's cookies (Netscape cookie file body)",
             openapi_extra={"requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "string", "minLength": 1}}}}})  # fmt: skip
def set_cookies(
    text: CookieText, key: CurrentKey, tx: WriteTx, settings: SettingsDep, clock: ClockDep
) -> dict[str, Any]:
    box = cookie_box(settings.resolved_secret_key())
    count = save_cookies(tx.session, key.id, text, box, now=clock.now_ms())
    return {"message": "Cookies saved; this key's downloads will use them", "cookies": count}


@router.delete("/user/cookies", response_model=None, summary="Remove this key's cookies")
def remove_cookies(key: CurrentKey, tx: WriteTx) -> dict[str, Any]:
    if not delete_cookies(tx.session, key.id):
        raise NotFound("This key has no cookies")
    return {"message": "Cookies removed"}
