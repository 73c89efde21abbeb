"""The hall's estimated waits per department line (等候时间预告), read over HTTP from the
hall page the screen loads (GET /hall, served in process as hub/tests/test_public_api.py
does): lines served by different windows with different queues show different waits, each
with its 80% interval; lines that share the same windows and queue show the same one."""

from __future__ import annotations

import json
import re
import warnings

from starlette.applications import Starlette

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import Registry
from onewindow.hub.web import public
from onewindow.hub.web.site import Site

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

T0 = 1_795_500_000.0


def hall_waits(windows: tuple[WindowSpec, ...], takes: dict[str, int]) -> dict[str, dict]:
    """The hall page's waits per line after every window opened and `takes` tickets taken
    (item -> how many)."""
    centre = Centre(load_catalog(), CentreConfig("hall", windows))
    hub = HubApp(centre, Registry([]), "b")
    site = Site(hub, None, lambda: T0)
    for w in windows:
        hub.operate(c.OpenWindow(w.number), T0)
    for item, n in takes.items():
        for _ in range(n):
            hub.operate(c.TakeTicket(item), T0)
    page = TestClient(Starlette(routes=public.routes(site))).get("/hall")
    assert page.status_code == 200
    found = re.search(r"const OW_HALL = (.*);", page.text)
    assert found is not None, "the hall page carries its first snapshot"
    snap = json.loads(found.group(1))["snap"]
    return {w["line"]: w for w in snap["waits"]}


def test_lines_with_their_own_windows_and_queues_show_different_waits():
    waits = hall_waits((WindowSpec(1, skills=("social",)), WindowSpec(2, skills=("medical",)),
                        WindowSpec(3, skills=("employment",))),
                       {"SOC-001": 12, "EMP-001": 3})
    soc, emp, med = waits["social"], waits["employment"], waits["medical"]
    assert (soc["waiting"], emp["waiting"], med["waiting"]) == (12, 3, 0)
    # the longer the line's own queue, the longer a newcomer waits
    assert soc["minutes"] > emp["minutes"] > med["minutes"] >= 0, (soc, emp, med)
    for w in (soc, emp, med):
        assert w["lo"] <= w["minutes"] <= w["hi"]
    assert soc["lo"] > emp["hi"]  # not just different points: intervals apart
    # a line no open window serves has no estimate
    assert waits["civil"]["minutes"] is None and waits["civil"]["lo"] is None


def test_lines_that_share_every_window_and_the_queue_show_the_same_wait():
    waits = hall_waits(tuple(WindowSpec(n, skills=("*",)) for n in (1, 2, 3)),
                       {"SOC-001": 12, "EMP-001": 3})
    shown = {(w["minutes"], w["lo"], w["hi"]) for w in waits.values()}
    assert len(shown) == 1 and next(iter(shown))[0] > 0, waits
