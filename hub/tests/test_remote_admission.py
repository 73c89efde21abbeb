"""A remote take from the phone is judged like a take at the kiosk or a box (issue 16,
honest capacity): in mode "stop" it is refused day_full in the resident's language and
nothing changes; in mode "warn" it is issued and its record keeps the verdict."""

from __future__ import annotations

from types import SimpleNamespace

from onewindow.hub.app import admission
from onewindow.hub.core import commands as c
from onewindow.hub.core.notices import RemoteRules

from .test_remote_take import at, env, take  # noqa: F401  (env: the fixture)


def test_stop_refuses_a_remote_take_after_closing_in_the_residents_language(env) -> None:  # noqa: F811
    client, site, clock = env
    site.hub.admission = "stop"
    clock[0] = at(17, 30)  # after closing
    before = site.hub.centre.to_dict()
    r = take(client, headers={"Accept-Language": "zh-TW"})
    assert r.status_code == 409 and r.json()["code"] == "day_full", r.text
    assert "/" not in r.json()["msg"] and "今日" in r.json()["msg"]
    assert site.hub.centre.to_dict() == before


def test_warn_issues_a_remote_take_that_cannot_be_served_and_stop_refuses_it(env) -> None:  # noqa: F811
    client, site, clock = env
    # remote takes until closing (no margin), so admission control is what decides
    site.config = SimpleNamespace(remote=RemoteRules(enabled=True, stop_minutes_before_close=0))
    clock[0] = at(16, 58)
    for k in range(20):  # a queue the one open window cannot serve in two minutes
        site.hub.operate(c.TakeTicket("SOC-001"), clock[0] - 20 + k)
    assert admission.verdict(site.hub, "SOC-001", clock[0]) == "late"
    site.hub.admission = "stop"
    before = site.hub.centre.to_dict()
    r = take(client)
    assert r.status_code == 409 and r.json()["code"] == "day_full", r.text
    assert site.hub.centre.to_dict() == before
    site.hub.admission = "warn"
    r = take(client, "13912345678")
    assert r.status_code == 200, r.text  # warned on the page before, issued all the same
    assert site.hub.centre.tickets[r.json()["id"]].number == r.json()["number"]
