"""A small catalog for core tests: enough lines and window kinds to exercise routing."""

from onewindow.hub.core.catalog import Catalog
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.policy import OrderingPolicy


def _item(id, line, kind="instant", minutes=5, kinds=("comprehensive",), days=0):
    return {"id": id, "line": line, "zh": f"事项{id}", "en": f"Item {id}", "kind": kind,
            "promised_days": days, "minutes": minutes, "weight": 1.0,
            "window_kinds": list(kinds), "materials": [], "related": []}


SMALL = {
    "version": 1,
    "centre_name": {"zh": "测试中心", "en": "Test centre"},
    "window_kinds": [{"id": k, "zh": k, "en": k} for k in ("comprehensive", "card", "cash")],
    "lines": [
        {"id": "soc", "zh": "社保", "en": "Social", "prefix": "A"},
        {"id": "med", "zh": "医保", "en": "Medical", "prefix": "B"},
        {"id": "civ", "zh": "民政", "en": "Civil", "prefix": "C"},
    ],
    "items": [
        _item("SOC-1", "soc"), _item("SOC-2", "soc", "promised", 10, days=5),
        _item("MED-1", "med", minutes=3), _item("CIV-1", "civ", "promised", 20, days=10),
        _item("CARD-1", "soc", minutes=4, kinds=("card",)),
        _item("CASH-1", "civ", minutes=2, kinds=("cash",)),
    ],
}


def small_catalog() -> Catalog:
    return Catalog.from_dict(SMALL)


def centre(windows=((1, "comprehensive"), (2, "comprehensive")), policy=None, open_all=True,
           now=0.0) -> Centre:
    from onewindow.hub.core import commands as c

    cfg = CentreConfig("test", tuple(WindowSpec(n, k) for n, k in windows),
                       policy or OrderingPolicy())
    core = Centre(small_catalog(), cfg)
    if open_all:
        for n, _ in windows:
            core.apply(c.OpenWindow(n, clerk=f"clerk{n}"), now)
    return core
