"""多问一句: a ticket that covers more than one item says so on paper. The print command of a
take with extra items lists every item: in its `lines` after the ones devices read by
place, and on the ESC/POS ticket under the main item (Chinese in the centre's slip Chinese,
English under it); a ticket of one item prints as before."""

from __future__ import annotations

import base64
import datetime as dt

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.render.escpos_decode import decode
from onewindow.protocol import ow_protocol as proto

CATALOG = load_catalog()
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


def printed(chinese: str, **take) -> dict:
    app = HubApp(Centre(CATALOG, CentreConfig("t1", (WindowSpec(1),))),
                 Registry([DeviceSpec("box-1", "box")]), "b1")
    app.slip_chinese = chinese
    step = app.handle(proto.device_topic("t1", "box-1", "evt"),
                      proto.encode("evt", proto.event("box-1", 1, "take", **take)), T0)
    [cmd] = [proto.decode("cmd", p.payload) for p in step.publishes
             if p.topic.endswith("/cmd")]
    return cmd


def test_every_item_of_the_ticket_is_printed():
    main, b, c = (CATALOG.items[i] for i in ("SOC-001", "SOC-002", "SOC-005"))
    cmd = printed("zh_CN", item=main.id, items=[b.id, c.id])
    assert cmd["lines"][-2:] == [f"+ {b.name.zh} / {b.name.en}", f"+ {c.name.zh} / {c.name.en}"]
    texts = decode(base64.b64decode(cmd["escpos"]))["texts"]
    ahead = next(k for k, x in enumerate(texts) if x.startswith("前面还有"))
    # under the main item, before the people ahead: each extra's Chinese, then its English
    # (which the printer's width may wrap)
    assert texts.index(main.name.zh) < texts.index(f"+ {b.name.zh}") < texts.index(
        f"+ {c.name.zh}") < ahead
    between = " ".join(texts[texts.index(f"+ {b.name.zh}") + 1:texts.index(f"+ {c.name.zh}")])
    assert between.split() == b.name.en.split()


def test_a_traditional_slip_prints_the_traditional_names():
    b = CATALOG.items["SOC-002"]
    cmd = printed("zh_TW", item="SOC-001", items=[b.id])
    assert cmd["lines"][-1] == f"+ {b.name.traditional} / {b.name.en}"
    assert f"+ {b.name.traditional}" in decode(base64.b64decode(cmd["escpos"]))["texts"]


def test_one_item_prints_as_before():
    cmd = printed("zh_CN", item="SOC-001")
    assert not any(line.startswith("+ ") for line in cmd["lines"])
    assert len(cmd["lines"]) == 7
