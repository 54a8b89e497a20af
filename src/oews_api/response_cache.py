"""A response cache in front of the GET data endpoints: the served file never changes, so neither do their answers.

Keyed by the path and the query string with its parameters in name order (``?area=X&occupation=Y``
and ``?occupation=Y&area=X`` are one entry; repeated names keep their relative order, so a list
is never merged with its reordering); only ``200`` JSON bodies are kept, in a ``BoundedLRU``
(entries and bytes). A hit is answered here, on the event loop, without routing, parameter
validation or the threadpool; the route the body came from is put back in the scope so
metrics label it like any other request. A miss goes through the app and is kept on the way out.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oews_api.caches import BoundedLRU

CACHED_PREFIX = "/api/v1/"
CachedResponse = tuple[Any, bytes]  # the route (for metrics) and the JSON body


def response_size(key: bytes, value: CachedResponse) -> int:
    """Bytes an entry holds: the key, the body and ~200 bytes of bookkeeping."""
    return len(key) + len(value[1]) + 200


class ResponseCache:
    """Answer repeated ``GET /api/v1/...`` requests from ``cache``; keep every new 200 JSON body."""

    def __init__(self, app: ASGIApp, cache: BoundedLRU[bytes, CachedResponse]) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(CACHED_PREFIX):
            await self.app(scope, receive, send)
            return
        key = scope["path"].encode() + b"?" + _in_name_order(scope["query_string"])
        hit = self.cache.get(key)
        if hit is not None:
            scope["route"], body = hit
            await send({"type": "http.response.start", "status": 200, "headers": _headers(body)})
            await send({"type": "http.response.body", "body": body})
            return
        response: dict[str, Any] = {"status": 0, "json": False, "chunks": []}

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["json"] = (b"content-type", b"application/json") in message.get("headers", [])
            elif message["type"] == "http.response.body":
                response["chunks"].append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, keep)
        if response["status"] == 200 and response["json"]:
            self.cache.put(key, (scope.get("route"), b"".join(response["chunks"])))


def _in_name_order(query: bytes) -> bytes:
    """The parameters sorted by name, stably (no decoding: ~1 µs, on every request, hits included)."""
    if b"&" not in query:
        return query
    return b"&".join(sorted(query.split(b"&"), key=lambda pair: pair.partition(b"=")[0]))


def _headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
