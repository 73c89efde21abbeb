"""The clerk console's city panel (全市通办, issue 20): the open cases elsewhere in the city
of the resident at the window, found by card token (the token is never shown, and the
city's rows carry no name or number).

Whose cases: the card last tapped at the window's node (its `card` look-up, a journaled
record naming the window and the token) until the window calls another ticket, for at most
TAP_KEEP_S; else the resident of the window's current ticket. A tap shows its card's cases
before any ticket of that resident is called.

The city is asked through hub/city/features.py's `city_cases` (the router's index,
`cityq`), never inside a snapshot: a snapshot reads the answers kept here and, for a token
with none (or an old one), starts one question in the background and shows `asking` (or
the old answer) meanwhile. The answer, or none within CASES_WAIT_S (`unreachable`; at once
when the centre is cut off), is kept per token for FRESH_S (RETRY_S when there was none),
and the live views of the windows showing that token are rebuilt. All of it is the web
side's, derived and forgotten: nothing is journaled, the hub's state (its snapshot and a
replay) does not hold it, and a hub without [city] has no panel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..city.features import CASES_WAIT_S, TOKEN
from ..core import city
from .pickup import city_rows

log = logging.getLogger("onewindow.hub.web")

TAP_KEEP_S = 180.0  # a card tapped at a window's node is shown this long at most
FRESH_S = 30.0  # a token's answer is used this long before the city is asked again
RETRY_S = 5.0  # ... and the city's silence this long
MAX_TOKENS = 1000  # answers kept, at most (the oldest go first)
CHANNEL = "staff-window"  # the console's live channel (hub/web/console.py)


class CityPanel:
    def __init__(self, site: Any) -> None:
        self.site = site
        self._answers: dict[str, tuple[float, list[dict[str, Any]] | None]] = {}
        self._asking: dict[str, asyncio.Task[None]] = {}
        # window -> (the card's token, the window's ticket when tapped, when)
        self._taps: dict[int, tuple[str, str | None, float]] = {}
        site.port.subscribe(self._after_step)

    def _features(self) -> Any:
        return getattr(self.site, "city", None)  # set by serve when centre.toml has [city]

    def _after_step(self, step: Any) -> None:
        """A card look-up at a window's node (hub/app/device_commands.py): its token shown
        there from now on."""
        for r in step.records:
            if r.op != "card" or self._features() is None:
                continue
            n, token = r.body.get("window"), r.body.get("resident")
            w = self.site.hub.centre.windows.get(n)
            if w is None or not isinstance(token, str):
                continue
            self._taps[n] = (token, w.ticket, r.ts)
            # gone from the page after TAP_KEEP_S even if nothing else changes
            with contextlib.suppress(RuntimeError):  # (no loop: a test's bare hub)
                asyncio.get_running_loop().call_later(TAP_KEEP_S, self._redraw, n)

    def _whose(self, n: int) -> tuple[str | None, str | None]:
        """The token the panel of window `n` is for, and where it came from."""
        w = self.site.hub.centre.windows[n]
        tap = self._taps.get(n)
        if tap is not None:
            token, ticket, at = tap
            if w.ticket in (None, ticket) and self.site.clock() - at < TAP_KEEP_S:
                return token, "card"
            del self._taps[n]  # the window called another ticket, or it is too old
        t = self.site.hub.centre.tickets.get(w.ticket) if w.ticket else None
        if t is not None and t.resident:
            return t.resident, "ticket"
        return None, None

    def view(self, n: int) -> dict[str, Any] | None:
        """Window `n`'s panel (None: no city here): `state` asking, unreachable, ok (its
        `cases`, perhaps none) or no_card (nobody at the window known by a card)."""
        features = self._features()
        if features is None:
            return None
        token, source = self._whose(n)
        if token is None or not TOKEN.match(token):
            return {"state": "no_card", "source": source, "cases": []}
        got = self._answers.get(token)
        if got is None or self.site.clock() - got[0] >= (FRESH_S if got[1] is not None
                                                          else RETRY_S):
            self._ask(features, token)
        if got is None:
            return {"state": "asking", "source": source, "cases": []}
        rows = got[1]
        return {"state": "unreachable" if rows is None else "ok", "source": source,
                "cases": rows or []}

    def _ask(self, features: Any, token: str) -> None:
        if token in self._asking:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # built outside the hub's loop: nothing to ask with
            return
        task = self._asking[token] = loop.create_task(self._fetch(features, token))
        task.add_done_callback(lambda _: self._asking.pop(token, None))

    async def _fetch(self, features: Any, token: str) -> None:
        rows: list[dict[str, Any]] | None = None
        try:
            got = await asyncio.wait_for(features.city_cases(token), CASES_WAIT_S)
            if got is not None:  # the cases held here are this centre's own, not the city's
                held = {link.key if link is not None else f"{features.me}/{k.id}"
                        for k, link in city.open_cases(self.site.hub.centre, token)}
                rows = city_rows(self.site.hub.centre, got, held, features.centre_name)
        except Exception as e:  # TimeoutError: the city did not answer in time
            log.debug("console: a card's cases in the city not answered: %r", e)
        self._answers.pop(token, None)
        self._answers[token] = (self.site.clock(), rows)
        while len(self._answers) > MAX_TOKENS:
            del self._answers[next(iter(self._answers))]
        for n in self.site.hub.centre.windows:
            if self._whose(n)[0] == token:
                self._redraw(n)

    def _redraw(self, n: int) -> None:
        self.site.live.refresh(CHANNEL, str(n))
