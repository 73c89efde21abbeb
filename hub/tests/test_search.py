"""Kiosk search: the words a resident would type find the right items, without a browser."""

from __future__ import annotations

import pytest

from onewindow.hub.catalog import load_catalog
from onewindow.hub.web.search import Search


@pytest.fixture(scope="module")
def search() -> Search:
    return Search(load_catalog())


def names(items) -> list[str]:
    return [i.name.zh for i in items]


@pytest.mark.parametrize("query", ["养老", "yanglao", "yl", "YangLao", "yang lao"])
def test_pension_items_found_by_chinese_pinyin_and_initials(search, query):
    found = names(search.search(query))
    assert found, query
    assert all("养老" in n or "yl" in query.lower() for n in found[:3]), found[:3]
    assert "养老" in found[0]


def test_initials_match_at_syllable_boundaries_only(search):
    # "ylbx" = 养老保险 / 医疗保险: both legitimate, and nothing else.
    for n in names(search.search("ylbx")):
        assert "养老保险" in n or "医疗保险" in n, n


def test_full_pinyin_does_not_match_inside_a_syllable(search):
    assert search.search("anglao") == []  # ...y|ang|lao would need a boundary at "ang"


def test_synonyms_and_catalog_keywords(search):
    assert any("退休" in n or "养老" in n for n in names(search.search("退休")))
    assert "最低生活保障申请" in names(search.search("低保"))
    assert any("医疗" in n for n in names(search.search("医保")))
    # several words: every word must match
    assert names(search.search("医保 报销")) and all(
        "报销" in n or "医疗" in n for n in names(search.search("医保 报销")))


def test_english_and_item_id(search):
    found = search.search("pension")
    assert found and all("pension" in i.name.en.lower() for i in found)
    assert search.search("SOC-001")[0].id == "SOC-001"


def test_nothing_and_nonsense(search):
    assert search.search("") == []
    assert search.search("   ") == []
    assert search.search("xqzv") == []
