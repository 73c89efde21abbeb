"""Catalog load refuses text the ticket printers cannot print (GBK firmwares, ASCII Latin)."""

import copy
import json

import pytest

from onewindow.hub.catalog import load_catalog
from onewindow.hub.core.catalog import Catalog, CatalogError
from onewindow.hub.tests.catalogs import SMALL


def _load(tmp_path, data):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return load_catalog(path)


def test_an_item_name_outside_gbk_is_refused_at_load_naming_item_and_character(tmp_path):
    data = copy.deepcopy(SMALL)
    data["items"][1]["zh"] = "𠀋字补办"
    with pytest.raises(CatalogError) as err:
        _load(tmp_path, data)
    msg = str(err.value)
    assert "SOC-2" in msg and "𠀋 (U+2000B)" in msg and "GBK" in msg
    assert "打印" in msg  # zh-CN first: the clerk configuring the centre reads Chinese


def test_a_centre_name_with_a_gb18030_only_character_is_refused(tmp_path):
    data = copy.deepcopy(SMALL)
    data["centre_name"]["zh"] = "䶮测试中心"
    with pytest.raises(CatalogError, match=r"centre_name.*䶮 \(U\+4DAE\)"):
        _load(tmp_path, data)


def test_a_material_name_is_checked_too_it_prints_on_the_tips_slip():
    data = copy.deepcopy(SMALL)
    data["items"][0]["materials"] = [{"zh": "身份证", "en": "ID"}, {"zh": "𠀋证明", "en": "X"}]
    with pytest.raises(CatalogError, match=r"SOC-1.*material 2.*U\+2000B"):
        Catalog.from_dict(data)


def test_an_english_name_that_cannot_fold_to_ascii_is_refused():
    data = copy.deepcopy(SMALL)
    data["items"][2]["en"] = "Medical ☺ card"
    with pytest.raises(CatalogError, match=r"MED-1.*☺ \(U\+263A\)"):
        Catalog.from_dict(data)
    data["items"][2]["en"] = "Café permit"  # accents fold away: printed as "Cafe"
    assert Catalog.from_dict(data).items["MED-1"].name.en == "Café permit"


def test_the_sample_catalog_is_printable_and_nothing_changes_on_refusal(tmp_path):
    sample = load_catalog()
    assert len(sample.items) > 100
    data = copy.deepcopy(SMALL)
    before = copy.deepcopy(data)
    data["items"][0]["zh"] = "𠀋"
    with pytest.raises(CatalogError):
        Catalog.from_dict(data)
    data["items"][0]["zh"] = before["items"][0]["zh"]
    assert data == before and Catalog.from_dict(data).items["SOC-1"].name.zh == "事项SOC-1"
