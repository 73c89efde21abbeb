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
