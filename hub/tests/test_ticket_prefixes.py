"""Ticket prefixes never use I or O (issue 18): on the hall screen, an LED board or a printed
ticket "I017" reads as "1017" and "O017" as "0017". The catalog refuses such a prefix at load
with a message naming the line or item, and `onewindow hub` says so in one line."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from onewindow.hub.catalog import load_catalog
from onewindow.hub.cliutil import CONFIG_ERROR_EXIT
from onewindow.hub.core.catalog import Catalog, CatalogError
from onewindow.hub.tests.catalogs import SMALL
from onewindow.tools.testkit.testbed import write_config


def test_the_sample_catalog_uses_no_letter_read_as_a_digit():
    catalog = load_catalog()
    prefixes = {line.prefix for line in catalog.lines.values()}
    prefixes |= {item.prefix for item in catalog.items.values()}
    assert len({line.prefix for line in catalog.lines.values()}) == len(catalog.lines) == 12
    assert not {ch for p in prefixes for ch in p.upper()} & {"I", "O"}, prefixes
    assert catalog.lines["elderly"].prefix == "M"


@pytest.mark.parametrize("prefix", ["I", "O", "i", "AO"])
def test_a_line_prefix_with_i_or_o_is_refused_naming_the_line(prefix):
    data = copy.deepcopy(SMALL)
    data["lines"][1]["prefix"] = prefix
    with pytest.raises(CatalogError) as err:
        Catalog.from_dict(data)
    msg = str(err.value)
    assert msg.startswith("line 'med' 号票前缀")  # zh-CN first, then English
    assert f"ticket prefix {prefix!r}" in msg and "choose another letter" in msg
    assert ("I as 1" in msg) and ("看成数字" in msg)


def test_an_item_prefix_of_its_own_is_checked_too():
    data = copy.deepcopy(SMALL)
    data["items"][2]["prefix"] = "O"
    with pytest.raises(CatalogError, match=r"item 'MED-1' .*'O'.*O / 0"):
        Catalog.from_dict(data)
    data["items"][2]["prefix"] = "P"  # any other letter is fine
    assert Catalog.from_dict(data).items["MED-1"].prefix == "P"


def test_the_hub_refuses_such_a_catalog_in_one_line_before_starting(tmp_path):
    data = copy.deepcopy(SMALL)
    data["lines"][0]["prefix"] = "I"
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    cfg = write_config(tmp_path / "centre.toml", "n1", None, tmp_path / "hub.db", windows=2,
                       catalog=catalog)
    done = subprocess.run([sys.executable, "-m", "onewindow.hub.cli", "hub", "--config",
                           str(cfg)], capture_output=True, text=True, timeout=60)
    assert done.returncode == CONFIG_ERROR_EXIT, done.stderr[-2000:]
    assert "line 'soc' 号票前缀 'I'" in done.stderr and "catalog.json" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "hub.db").exists()
