"""The clerk consoles' queues (hub/web/console.py `_queue_of`): walked, and their rows
made, once for all the windows alike during one state, and each console still shows
exactly its own window's queue: a ticket sent to one window is in that window's list only,
and the next state is walked anew (issue 14: 30 consoles each walking ~950 waiting tickets
9 times per build were most of what the live views cost the hub)."""

from __future__ import annotations

from typing import Any

from onewindow.hub.core import commands as c
from onewindow.hub.core.window_queue import upcoming
from onewindow.hub.web import console
from onewindow.hub.web.console import NEXT_LIST, _eligible

from .test_staff_http import Env


def walked_alone(env: Env, n: int) -> dict[str, Any]:
    """Window n's queue as one walk of the queue for it alone gives it."""
    centre, now = env.hub.centre, env.now
    w = centre.windows[n]
    eligible = [u for u in centre.queue if _eligible(u, n, w.skills)]
    return {"waiting": len(eligible),
            "list": [u.number for u in eligible],
            "mine": [u.number for u in eligible if u.target_window == n],
            "next": [u.number for u in upcoming(centre, n, now, NEXT_LIST)]}


def shown(env: Env, n: int) -> dict[str, Any]:
    q = env.site.live.snapshot("staff-window", str(n))["queue"]
    return {"waiting": q["waiting"], "list": [u["number"] for u in q["list"]],
            "mine": q["mine"], "next": [u["number"] for u in q["next"]]}


def test_windows_alike_share_one_walk_and_a_sent_ticket_stays_with_its_window(
        tmp_path, monkeypatch):
    env = Env(tmp_path)
    try:
        for _ in range(6):
            env.act(c.TakeTicket("SOC-001"))
        for n in (1, 2, 3):
            env.act(c.OpenWindow(n, f"clerk{n}"))
        env.act(c.CallNext(1))
        env.act(c.Transfer(1, to_window=2))  # A001 now waits for window 2 only
        walked: list[int] = []

        def counted(state, window, now, limit=20):  # type: ignore[no-untyped-def]
            walked.append(window)
            return upcoming(state, window, now, limit)

        monkeypatch.setattr(console, "upcoming", counted)
        views = {n: shown(env, n) for n in (1, 2, 3)}
        assert views == {n: walked_alone(env, n) for n in (1, 2, 3)}
        assert "A001" in views[2]["list"] and views[2]["mine"] == ["A001"]
        assert "A001" not in views[1]["list"] + views[3]["list"]
        assert views[1] == views[3]  # alike: one walk served both
        # windows 1 and 3 walked once between them, window 2 on its own
        assert walked == [1, 2]
        # and their consoles show one object: made once, its delta computed and
        # serialised once for both feeds (hub/web/livepatch.py Memo, live.py Fragments)
        queue = {n: env.site.live.snapshot("staff-window", str(n))["queue"] for n in (1, 2, 3)}
        assert queue[1] is queue[3] and queue[2] is not queue[1]
        assert [u["targeted"] for u in queue[2]["list"]] == [
            u == "A001" for u in views[2]["list"]]
        # the next state is walked anew
        env.act(c.CallNext(3))
        assert {n: shown(env, n) for n in (1, 2, 3)} == {n: walked_alone(env, n)
                                                        for n in (1, 2, 3)}
    finally:
        env.site.accounts.close()
