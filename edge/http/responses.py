"""Shared response helpers of the HTTP API: JSON responses and errors, the one bounded JSON body reader
every route uses, 429s with Retry-After, row ids from paths."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec
from aiohttp import web

from edge.errors import field_error

_json = msgspec.json.Encoder()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


BODY_MAX_BYTES = 64 * 1024  # every JSON body the API reads is small


INT64_MAX = 2**63 - 1


def json_response(value: object, status: int = 200) -> web.Response:
    return web.Response(body=_json.encode(value), status=status, content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


def too_many(message: str, wait_s: float) -> web.Response:
    response = error_response(429, message)
    response.headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
    return response


B = TypeVar("B")


async def read_json(request: web.Request, kind: type[B], example: str) -> B | web.Response:
    """The request's JSON body as ``kind``, or the 4xx to send: every route that reads JSON uses this.

    Bounded: at most `BODY_MAX_BYTES` (413), and nesting deeper than msgspec's recursion limit is a 400,
    not a RecursionError; errors name the field (``personalisation: Expected `bool`...``)."""
    if request.content_length is not None and request.content_length > BODY_MAX_BYTES:
        return error_response(413, f"body: at most {BODY_MAX_BYTES} bytes")
    raw = bytearray()
    while chunk := await request.content.read(BODY_MAX_BYTES + 1 - len(raw)):
        raw += chunk
        if len(raw) > BODY_MAX_BYTES:
            return error_response(413, f"body: at most {BODY_MAX_BYTES} bytes")
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        field, problem = field_error(str(exc))
        return error_response(400, f"{field}: {problem}" if field else f"body: {problem}")
    except msgspec.DecodeError:
        return error_response(400, f"body: expected JSON like {example}")
    except RecursionError:
        return error_response(400, "body: nested too deeply")


def parse_row_id(text: str) -> int | None:
    """A database row id from a path: ASCII digits within SQLite's int64; None for anything else."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if value <= INT64_MAX else None
