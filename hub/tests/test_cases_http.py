"""The back office's case pages over HTTP (issue 17's case loop, hub/web/cases.py): each
department's queue with deadline flags, one case's page with its steps and the documents
captured for its ticket (staff only, the case's department only), the loop's actions with
the user journaled, and bad input answered with a clear zh / en error that changes
nothing."""

import datetime as dt

import pytest

from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre

from .test_staff_http import PAGE, PASSWORD, Env

SOCIAL, CIVIL = "SOC-003", "CIV-004"  # promised: social (4 materials) and civil (3)


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    acc = e.site.accounts
    acc.add("soc1", PASSWORD, "backoffice", department="social", now=e.now)
    acc.add("civ1", PASSWORD, "backoffice", department="civil", now=e.now)
    yield e
    acc.close()


def accept(env: Env, item: str) -> str:
    """A promised item completed at window 1: its case id."""
    if env.hub.centre.windows[1].clerk is None:
        env.act(c.OpenWindow(1, "clerk1"))
    env.act(c.TakeTicket(item))
    env.act(c.CallNext(1))
    before = set(env.hub.centre.cases)
    env.act(c.Complete(1))
    [k] = set(env.hub.centre.cases) - before
    return k


def unchanged(env: Env):
    """A check that the core's state is as it was when this was called."""
    before = env.hub.centre.to_dict()
    return lambda: env.hub.centre.to_dict() == before


def test_each_department_sees_its_own_queue_and_a_supervisor_all(env):
    soc, civ = accept(env, SOCIAL), accept(env, CIVIL)
    page = env.client("soc1").get("/cases", headers=PAGE)
    assert page.status_code == 200
    assert f'data-case="{soc}"' in page.text and f'data-case="{civ}"' not in page.text
    assert 'id="scope"' in page.text and 'id="dept-filter"' not in page.text
    sup = env.client("sup")
    page = sup.get("/cases", headers=PAGE)
    assert f'data-case="{soc}"' in page.text and f'data-case="{civ}"' in page.text
    page = sup.get("/cases?department=civil", headers=PAGE)
    assert f'data-case="{soc}"' not in page.text and f'data-case="{civ}"' in page.text
    # The return form of a row: its own reason box and the item's materials to tick.
    row = page.text[page.text.index(f'data-case="{civ}"'):]
    row = row[:row.index("</tr>")]
    assert row.count('class="case-reason"') == 1 and row.count('name="material"') == 3
    assert sup.get("/cases?department=nowhere", headers=PAGE).status_code == 400


def test_another_departments_case_is_forbidden_and_nothing_changes(env):
    soc = accept(env, SOCIAL)
    cl = env.client("civ1")
    same = unchanged(env)
    for r in (cl.get(f"/cases/{soc}", headers=PAGE),
              cl.get(f"/cases/{soc}/files/1-abc.jpg"),
              cl.post(f"/cases/{soc}/approved", json={}),
              cl.post(f"/cases/{soc}/reassigned", json={"reason": "mine", "department": "civil"}),
              cl.get("/cases?department=social", headers=PAGE)):
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "other_department"
        assert "社会保障" in r.json()["msg"] or "social" in r.json()["msg"].lower()
    assert same()


def test_the_whole_loop_over_http_journals_who_did_each_step(env):
    k = accept(env, SOCIAL)
    soc, civ, sup = env.client("soc1"), env.client("civ1"), env.client("sup")
    r = soc.post(f"/cases/{k}/returned", json={"reason": "户口簿复印件不清晰",
                                              "materials": [1, 3]})
    assert r.status_code == 200 and r.json()["state"] == "returned"
    assert len(r.json()["return_materials"]) == 2
    case = env.hub.centre.cases[k]
    assert (case.return_reason, case.return_materials) == ("户口簿复印件不清晰", (1, 3))
    r = soc.post(f"/cases/{k}/reassigned", json={"reason": "属民政科", "department": "civil"})
    assert r.status_code == 200 and r.json()["department"] == "civil"
    assert soc.get(f"/cases/{k}", headers=PAGE).status_code == 403  # not social's now
    for action, state in (("resubmitted", "open"), ("approved", "ready")):
        r = civ.post(f"/cases/{k}/{action}", json={})
        assert r.status_code == 200 and r.json()["state"] == state, r.text
    page = civ.get(f"/cases/{k}", headers=PAGE)
    assert page.status_code == 200 and "户口簿复印件不清晰" in page.text
    steps = page.text[page.text.index('id="case-steps"'):]
    for action in ("accepted", "returned", "reassigned", "resubmitted", "approved"):
        assert f'data-action="{action}"' in steps
    r = sup.post(f"/cases/{k}/handed_over", json={})
    assert r.status_code == 200 and r.json()["state"] == "closed"
    assert env.hub.centre.cases[k].handed_by == "sup"
    # the app noted every step with the user (history_case_events' rows at the close)
    assert [(e["action"], e["by"]) for e in env.hub.case_events if e["case"] == k] == [
        ("accepted", "clerk1"), ("returned", "soc1"), ("reassigned", "soc1"),
        ("resubmitted", "civ1"), ("approved", "civ1"), ("handed_over", "sup")]


@pytest.mark.parametrize("action, body, status, code", [
    ("reassigned", {"reason": "x", "department": "nowhere"}, 400, "unknown_department"),
    ("reassigned", {"department": "civil"}, 400, "missing_reason"),
    ("returned", {"materials": [0]}, 400, "missing_reason"),
    ("returned", {"reason": "缺材料"}, 400, "missing_materials"),
    ("returned", {"reason": "缺材料", "materials": [4]}, 400, "unknown_material"),
    ("returned", {"reason": "缺材料", "materials": ["0"]}, 400, "bad_field"),
    ("returned", {"reason": "x" * 201, "materials": [0]}, 400, "bad_field"),
    ("reassigned", {"reason": "x", "department": ["civil"]}, 400, "bad_field"),
    ("handed_over", {}, 409, "bad_case_state"),  # open, not ready
    ("resubmitted", {}, 409, "bad_case_state"),
    ("approve", {}, 409, "bad_field"),
])
def test_bad_input_is_refused_with_a_clear_error_and_changes_nothing(env, action, body,
                                                                      status, code):
    k = accept(env, SOCIAL)
    same = unchanged(env)
    r = env.client("soc1").post(f"/cases/{k}/{action}", json=body)
    assert r.status_code == status and r.json()["code"] == code, r.text
    assert " / " in r.json()["msg"] and any("\u4e00" <= ch <= "\u9fff" for ch in r.json()["msg"])
    assert same()


def test_approve_of_a_case_that_is_not_open_is_refused(env):
    k = accept(env, SOCIAL)
    cl = env.client("soc1")
    assert cl.post(f"/cases/{k}/approved", json={}).status_code == 200
    same = unchanged(env)
    r = cl.post(f"/cases/{k}/approved", json={})
    assert r.status_code == 409 and "待领取" in r.json()["msg"] and "ready" in r.json()["msg"]
    assert cl.post("/cases/19990101-Z999/approved", json={}).status_code == 404
    assert same()


def test_documents_captured_for_the_ticket_are_on_the_case_page_for_staff_only(env, tmp_path):
    k = accept(env, SOCIAL)
    store = env.site.staff.files  # the app's FileStore, where the nodes' uploads go
    jpeg = b"\xff\xd8\xff\xe0" + b"page" * 100
    entry, _ = store.save(k, jpeg, "jpg", "image/jpeg", kind="page", device="node-1")
    store.save(k, b"%PDF-1.4 form", "pdf", "application/pdf", kind="upload", device=None)
    page = env.client("soc1").get(f"/cases/{k}", headers=PAGE)
    assert f'<img src="/cases/{k}/files/{entry.file}"' in page.text
    assert page.text.count("/files/") >= 3  # two links, one thumbnail
    r = env.client("soc1").get(f"/cases/{k}/files/{entry.file}")
    assert r.status_code == 200 and r.content == jpeg and r.headers["cache-control"] == "no-store"
    assert env.client("soc1").get(f"/cases/{k}/files/9-nothing.jpg").status_code == 404
    assert env.client("civ1").get(f"/cases/{k}/files/{entry.file}").status_code == 403
    assert env.client("clerk1").get(f"/cases/{k}/files/{entry.file}").status_code == 403
    anon = env.client().get(f"/cases/{k}/files/{entry.file}", follow_redirects=False)
    assert anon.status_code in (303, 401)


def test_overdue_due_soon_and_uncollected_are_flagged(env):
    centre: Centre = env.hub.centre
    late, soon, ready = accept(env, SOCIAL), accept(env, SOCIAL), accept(env, SOCIAL)
    today = centre.local_date(env.now)
    centre.cases[late].due_day = (today - dt.timedelta(days=3)).isoformat()
    centre.cases[soon].due_day = centre.add_workdays(today, 1).isoformat()
    env.client("soc1").post(f"/cases/{ready}/approved", json={})
    page = env.client("soc1").get("/cases", headers=PAGE).text
    assert 'class="due_soon"' in page[page.index(f'<tr data-case="{soon}"'):][:200]
    env.now += 7 * 86400 + 60  # ready a week: uncollected ([pickup] uncollected_days 7)
    page = env.client("soc1").get("/cases", headers=PAGE).text
    rows = {k: page[page.index(f'<tr data-case="{k}"'):][:200] for k in (late, soon, ready)}
    assert 'class="overdue"' in rows[late] and 'class="uncollected"' in rows[ready]
    deadlines = page[page.index('id="deadlines"'):]
    assert f'data-case="{late}"' in deadlines and f'data-case="{ready}"' in deadlines
    # the queue puts the overdue case first
    assert page.index(f'<tr data-case="{late}"') < page.index(f'<tr data-case="{ready}"')


def test_the_dashboard_alerts_on_a_departments_overdue_cases(env):
    k = accept(env, SOCIAL)
    env.hub.centre.cases[k].due_day = "2020-01-01"
    alerts = env.client("sup").get("/dashboard/state").json()["alerts"]
    assert {"kind": "cases_overdue", "department": "social", "waiting": 1,
            "href": "/cases?department=social"}.items() <= next(
        a for a in alerts if a["kind"] == "cases_overdue").items()
    page = env.client("sup").get("/dashboard", headers=PAGE).text
    assert "alert_cases_overdue" in page  # the alert's label, in the page's strings
