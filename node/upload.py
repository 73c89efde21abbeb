"""Send a captured document to the hub over HTTP(S): images never go over MQTT.

`POST {hub_url}/api/tickets/{ticket_or_case}/files`, multipart (`file`, `kind`), with the
node's bearer token. Connection failures, timeouts and 5xx answers are retried with
exponential backoff and jitter; a 4xx answer (unknown ticket, too large, wrong type, bad
token) is final and raises `UploadError` at once. Retrying a POST whose answer was lost is
safe: the hub stores a given file once per ticket (same sha256 → same entry, 200).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any
from urllib.parse import quote

import httpx

log = logging.getLogger("onewindow.node.upload")

RETRIES = 4  # attempts after the first
BACKOFF = 0.25  # s, doubled per attempt, full jitter
BACKOFF_MAX = 5.0


class UploadError(Exception):
    """The hub refused the file (4xx: `status` and the hub's `code`), or stayed unreachable
    (`status` None, `code` "unreachable"), or kept failing (5xx)."""

    def __init__(self, msg: str, status: int | None = None, code: str = "") -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


def files_url(hub_url: str, ticket_or_case: str) -> str:
    return f"{hub_url.rstrip('/')}/api/tickets/{quote(ticket_or_case, safe='')}/files"


def _error_of(r: httpx.Response) -> tuple[str, str]:
    try:
        body = r.json()
        return str(body.get("code", "")), str(body.get("msg", r.text))
    except ValueError:
        return "", r.text[:200]


async def upload(hub_url: str, ticket_or_case: str, filename: str, data: bytes,
                 content_type: str, token: str | None = None, *, kind: str = "page",
                 retries: int = RETRIES, backoff: float = BACKOFF, timeout: float = 15.0,
                 client: httpx.AsyncClient | None = None) -> dict[str, Any]:
    """Upload one file; returns the hub's answer {"ticket", "file", "bytes", "sha256"}."""
    url = files_url(hub_url, ticket_or_case)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    own = client is None
    http = client or httpx.AsyncClient(timeout=timeout)
    delay = backoff
    last: str = ""
    last_status: int | None = None
    try:
        for attempt in range(retries + 1):
            if attempt:
                wait = random.uniform(0, delay)
                log.warning("upload of %s to %s failed (%s); retry %d/%d in %.2f s",
                            filename, url, last, attempt, retries, wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, BACKOFF_MAX)
            try:
                r = await http.post(url, headers=headers, data={"kind": kind},
                                    files={"file": (filename, data, content_type)})
            except httpx.TransportError as e:  # refused, reset, timed out, DNS ...
                last = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                continue
            if r.status_code in (200, 201):
                return dict(r.json())
            code, msg = _error_of(r)
            if 400 <= r.status_code < 500:
                raise UploadError(f"hub refused {filename} for {ticket_or_case}: "
                                  f"{r.status_code} {code}: {msg}", r.status_code, code)
            last, last_status = f"HTTP {r.status_code} {code} {msg}".strip(), r.status_code
        raise UploadError(f"hub at {hub_url} unreachable or failing after {retries + 1} "
                          f"attempts: {last}", last_status, "unreachable")
    finally:
        if own:
            await http.aclose()


__all__ = ["UploadError", "files_url", "upload"]
