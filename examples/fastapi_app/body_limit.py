"""Refuse request bodies over a size limit with 413, before they are read into memory.

FastAPI reads a JSON body whole before validating it, so a size limit has to sit in front:
:class:`BodyLimit` refuses a declared ``Content-Length`` over the limit at once, and counts a
body sent without one (chunked) as it arrives, ending the request with 413 as soon as it
passes the limit. :func:`read_body` does the same for a route that reads the raw body itself.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "read_body"]


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the request body is over {limit} bytes")


class BodyLimit:
    """ASGI middleware: at most ``limit_for(path)`` bytes of request body per request."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the route, so FastAPI answers it as an HTTP error.
                    raise _too_large(limit)
            return message

        await self.app(scope, counting_receive, send)


async def _refuse(send: Send, limit: int) -> None:
    body = f'{{"detail":"the request body is over {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(request: Request, *, limit: int) -> bytes:
    """The raw request body, or 413 once it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
