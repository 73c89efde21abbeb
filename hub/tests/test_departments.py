"""Departments (科室, issue 17): the catalog names who approves each item (its line by
default, or a `departments` list with `department` per item), and back-office users and
specialists belong to one; migration 0004 adds the accounts' column."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from onewindow.hub.catalog import load_catalog
from onewindow.hub.core.catalog import Catalog, CatalogError
from onewindow.hub.store.accounts import AccountError, Accounts

SAMPLE = Path(__file__).parents[1] / "catalog" / "sample_catalog.json"


def _raw() -> dict:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def test_departments_default_to_the_lines():
    cat = load_catalog()
    assert set(cat.departments) == set(cat.lines)
    item = cat.items["SOC-001"]
    assert item.approver == item.line == "social"


def test_a_departments_list_and_an_item_department():
    raw = _raw()
    raw["departments"] = [{"id": d, "zh": d, "en": d} for d in ("approvals", "certs")]
    for it in raw["items"]:
        it["department"] = "approvals"
    raw["items"][0]["department"] = "certs"
    cat = Catalog.from_dict(raw)
    assert set(cat.departments) == {"approvals", "certs"}
    assert cat.items[raw["items"][0]["id"]].approver == "certs"
    assert cat.items[raw["items"][1]["id"]].approver == "approvals"


@pytest.mark.parametrize("bad", ["unknown-dept", "duplicate"])
def test_a_catalog_naming_a_department_that_does_not_exist_is_refused(bad):
    raw = copy.deepcopy(_raw())
    if bad == "duplicate":
        raw["departments"] = [{"id": "x", "zh": "x", "en": "x"}] * 2
        with pytest.raises(CatalogError, match="duplicate department"):
            Catalog.from_dict(raw)
    else:
        raw["items"][0]["department"] = "nowhere"
        with pytest.raises(CatalogError, match="unknown department 'nowhere'"):
            Catalog.from_dict(raw)


def test_accounts_carry_their_department(tmp_path):
    acc = Accounts(f"sqlite:///{tmp_path}/a.db")
    try:
        a = acc.add("bo1", "password1", "backoffice", department="social")
        assert a.department == "social" and acc.get("bo1").department == "social"
        with pytest.raises(AccountError, match="belongs to a department"):
            acc.add("clerk1", "password1", "clerk", department="social")
        acc.set_department("bo1", "civil")
        token = acc.start_session(acc.get("bo1"), 100.0)
        assert acc.session(token, 101.0).account.department == "civil"
        acc.add("sup", "password1", "supervisor")
        assert acc.get("sup").department is None
    finally:
        acc.close()
