import json
from pathlib import Path

import pytest

from onewindow.tools.testkit.testbed import Mosquitto

from .catalogs import SMALL


@pytest.fixture
def mosquitto(tmp_path):
    with Mosquitto(tmp_path / "broker") as m:
        yield m


@pytest.fixture
def small_catalog_file(tmp_path) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(SMALL, ensure_ascii=False), encoding="utf-8")
    return path


def _declared_timeout(item: pytest.Item) -> float:
    mark = item.get_closest_marker("timeout")
    return float(mark.args[0]) if mark is not None and mark.args else 0.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long tests first, for the whole session (this hook sees every item): the two xdist
    workers take tests in collection order, and a two-minute end-to-end test started last
    leaves the other worker idle for its length. A test that declares a timeout above the
    default (pyproject.toml: 120 s) is a long one; longest declared first, the rest in
    their order."""
    items.sort(key=lambda item: -_declared_timeout(item) if _declared_timeout(item) > 120
               else 0.0)
