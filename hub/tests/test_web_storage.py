"""Staff and kiosk actions while the journal cannot store (database down, disk full): the
runner is recovering its storage (hub/runner.py), so the pages get a 503 that says so, in
zh-CN first, and nothing is decided. The outage itself, with a real PostgreSQL and a real
full disk, is hub/tests/test_storage_faults.py; here the real runner object is put in the
state it holds during one."""

from onewindow.hub.config import BrokerURL
from onewindow.hub.core import commands as c
from onewindow.hub.runner import HubRunner
from onewindow.hub.store.journal import Journal

from .test_staff_http import Env


def test_an_action_during_a_storage_outage_is_refused_with_503_and_changes_nothing(tmp_path):
    env = Env(tmp_path)
    journal = Journal(f"sqlite:///{tmp_path}/journal.db")
    try:
        runner = HubRunner(env.hub, journal, BrokerURL("127.0.0.1", 1), lambda: env.now)
        env.site.port = runner  # the pages act through the runner, as in `serve`
        cl = env.client("admin", window=1)
        assert cl.post("/console/open", json={"window": 1}).status_code == 200
        env.act(c.TakeTicket(next(iter(env.hub.centre.windows[1].skills))))
        before = (env.hub.centre.to_dict(), env.hub.pos)
        runner.storage_ok.clear()  # as `_storage_lost` leaves it
        r = cl.post("/console/call", json={"window": 1})
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.json()["code"] == "storage_unavailable"
        assert r.json()["msg"].startswith("系统暂时无法保存")
        assert (env.hub.centre.to_dict(), env.hub.pos) == before
        runner.storage_ok.set()  # storage back: the same press works, journaled
        assert cl.post("/console/call", json={"window": 1}).status_code == 200
        assert env.hub.centre.windows[1].state.value == "calling"
        assert [r.body["op"] for r in journal.read()][-1] == "call"
    finally:
        journal.close()
