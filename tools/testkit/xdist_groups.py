"""Refuse to run when `--dist loadgroup` would silently not group.

Tests that share one machine-wide peer (the pcscd virtual card reader, the demo's port 8080)
are marked `xdist_group` so xdist sends them to one worker. xdist 3.8 tells its scheduler the
group by appending `@group` to the item's `_nodeid`; pytest 9.2 builds `nodeid` from `_id`
instead, so the suffix is lost and the marked tests spread over every worker
(pytest-dev/pytest-xdist#1386). Nothing fails at that point: the tests later fight over the
shared peer. pyproject.toml pins a pytest whose node ids xdist can still mark; this plugin
makes each grouped test fail, naming the cause, when a future upgrade breaks it.
"""

from __future__ import annotations

import pytest


def _groups(item: pytest.Item) -> set[str]:
    names = set()
    for mark in item.iter_markers("xdist_group"):
        names.add(str(mark.args[0] if mark.args else mark.kwargs.get("name", "default")))
    return names


def pytest_runtest_setup(item: pytest.Item) -> None:
    # only on an xdist worker running loadgroup: that is where xdist marks the node ids
    config = item.config
    if not hasattr(config, "workerinput") or not config.getvalue("loadgroup"):
        return
    if _groups(item) and "@" not in item.nodeid:
        pytest.fail(
            f"--dist loadgroup: this test is marked xdist_group {sorted(_groups(item))} but its "
            "node id carries no @group, so xdist spreads the group over every worker and its "
            "tests would fight over their shared peer. Either the mark was added after xdist's "
            "own pytest_collection_modifyitems read the marks (add it in a tryfirst hook, as "
            "node/tests/conftest.py does), or this pytest and pytest-xdist do not work "
            "together (pytest-dev/pytest-xdist#1386: keep the versions pinned in "
            "pyproject.toml).",
            pytrace=False,
        )
