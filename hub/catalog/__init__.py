"""Catalog files. The sample catalog ships with the package; centres may supply their own."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from ..core.catalog import Catalog

SAMPLE = "sample_catalog.json"


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read a catalog JSON file; with no path, the sample catalog shipped with OneWindow."""
    if path is None:
        text = resources.files(__package__).joinpath(SAMPLE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return Catalog.from_dict(json.loads(text))
