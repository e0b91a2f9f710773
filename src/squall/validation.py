"""Turn request-validation errors into one sentence a person understands (always a 400)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from difflib import get_close_matches
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.config import JsonDict

from squall.errors import InvalidInput


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts)


def describe_validation_error(errors: Sequence[Any]) -> str:
    if not errors:
        return "Invalid request"
    error = errors[0]
    kind = error.get("type", "")
    field = _field(error.get("loc", ()))
    message = str(error.get("msg", "is invalid"))
    if kind == "json_invalid":
        return "Request body is not valid JSON"
    if kind == "missing":
        return f"Field '{field}' is required" if field else "A JSON request body is required"
    if kind == "extra_forbidden":
        return f"Unknown field '{field}'"
    if kind in ("value_error", "assertion_error"):
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "model_attributes_type" or kind == "dict_type":
        return "Request body must be a JSON object"
    text = message[0].lower() + message[1:] if message else "is invalid"
    return f"Field '{field}': {text}" if field else text


def unknown_field_message(name: str, known: Iterable[str]) -> str:
    """``Unknown field 'resolution'; did you mean 'max_resolution'?``: a typo, or a field
    another API spells differently, should cost one read, not a trip to the docs."""
    candidates = list(known)
    close = get_close_matches(name, candidates, n=1, cutoff=0.6)
    if not close:  # "resolution" -> "max_resolution": a known field that contains the name
        close = [field for field in candidates if name and (name in field or field in name)][:1]
    return f"Unknown field '{name}'; did you mean '{close[0]}'?" if close else f"Unknown field '{name}'"


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: dict[str, Any], *, where: str = "") -> M:
    """``model.model_validate`` for data that is not the request body itself (bulk items,
    feed episodes): errors become the same kind of 400, prefixed with ``where``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message = describe_validation_error(exc.errors())
        raise InvalidInput(f"{where}: {message}" if where else message) from None


# What the OpenAPI document states about a source URL field (the checks themselves run in the
# URL guard): not empty, http(s). Stated so that generated "valid" requests are valid.
URL_FIELD_SCHEMA: JsonDict = {"minLength": 1, "pattern": r"^\s*[hH][tT][tT][pP][sS]?://"}
