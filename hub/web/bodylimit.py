"""A request body cut off past a size, chunked uploads too: `limited(receive, limit)` wraps
the ASGI receive channel and raises `TooLarge` once more than `limit` bytes came, so a
handler reading a form or JSON stops there instead of buffering whatever a client sends."""

from __future__ import annotations

from starlette.types import Message, Receive


class TooLarge(Exception):
    pass


def limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge
        return message

    return wrapped
