"""Configuration: the shipped example and sample catalog load, and mistakes are named."""

from pathlib import Path

import pytest

from onewindow.hub import config as hub_config
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core.catalog import Catalog, CatalogError
from onewindow.hub.core.centre import Centre

from .catalogs import SMALL

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "centre.example.toml"


def test_example_config_builds_a_centre():
    cfg = hub_config.load(EXAMPLE)
    catalog = load_catalog(cfg.catalog_path)
    hub_config.check(cfg, catalog)
    core = Centre(catalog, cfg.centre)
    assert cfg.broker_url is None and cfg.database_url.startswith("sqlite")
    assert core.windows[2].skills >= {"GEN-009"}
    assert all(catalog.items[i].line in ("social", "medical") or i == "GEN-009"
               for i in core.windows[2].skills)
    assert "SOC-005" in core.windows[3].skills  # the card window's own item


def test_sample_catalog_is_a_realistic_centre():
    cat = load_catalog()
    assert 185 <= len(cat.items) <= 195 and len(cat.lines) == 12
    kinds = {i.kind for i in cat.items.values()}
    assert kinds == {"instant", "promised"}
    assert any(i.specialised for i in cat.items.values())
    assert all(i.materials and i.name.zh and i.name.en for i in cat.items.values())


@pytest.mark.parametrize("mutate,fragment", [
    (lambda d: d["items"][0].update(line="nope"), "unknown line"),
    (lambda d: d["items"][1].update(id=d["items"][0]["id"]), "duplicate item"),
    (lambda d: d["items"][0].update(related=["GHOST"]), "do not exist"),
    (lambda d: d["items"][0].update(window_kinds=["teleport"]), "unknown window kinds"),
    (lambda d: d["items"][0].pop("minutes"), "missing or malformed"),
])
def test_catalog_mistakes_are_named(mutate, fragment):
    import copy

    data = copy.deepcopy(SMALL)
    mutate(data)
    with pytest.raises(CatalogError, match=fragment):
        Catalog.from_dict(data)


def test_config_mistakes_are_named(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text('[centre]\nid = "x"\n')
    with pytest.raises(hub_config.ConfigError, match="windows"):
        hub_config.load(bad)
    bad.write_text('[centre]\nid = "x"\n[[windows]]\nnumber = 1\n'
                   '[[devices]]\nid = "kp-1"\nrole = "keypad"\nwindow = 9\n')
    cfg = hub_config.load(bad)
    with pytest.raises(hub_config.ConfigError, match="window 9"):
        hub_config.check(cfg, load_catalog())
    with pytest.raises(hub_config.ConfigError, match="mqtt://"):
        hub_config.BrokerURL.parse("http://x")


# Every command that reads centre.toml, with what else it needs to get as far as reading it.
COMMANDS = [
    ["hub"],
    ["user", "list"],
    ["provision", "--list"],
    ["broker-config", "--out", "{tmp}/broker"],
    ["backup", "--out", "{tmp}/b.tar"],
    ["restore", "--from", "{tmp}/b.tar"],
    ["purge", "--dry-run"],
    ["rebuild-history"],
    ["devices"],
    ["ota", "--role", "led", "--version", "0.3.0", "--image", "{tmp}"],
]


@pytest.mark.parametrize("args", COMMANDS,
                         ids=[" ".join(c[:2]) if c[0] == "user" else c[0] for c in COMMANDS])
def test_every_command_refuses_a_bad_centre_config_with_exit_2(tmp_path, args):
    """Said on stderr, zh-CN first, with the reason; exit status 2; nothing written."""
    from typer.testing import CliRunner

    from onewindow.hub.cli import app

    bad = tmp_path / "centre.toml"
    bad.write_text('[centre]\nid = "x"\n')  # no [[windows]]
    before = sorted(tmp_path.iterdir())
    words = [a.format(tmp=tmp_path) for a in args]
    r = CliRunner().invoke(app, [*words, "--config", str(bad)])
    assert r.exit_code == 2, r.output
    assert "配置错误 / configuration error" in r.stderr and "[[windows]]" in r.stderr, r.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_node_refuses_a_bad_node_config_with_exit_2(tmp_path):
    from typer.testing import CliRunner

    from onewindow.hub.cli import app

    bad = tmp_path / "node.toml"
    bad.write_text('[node]\ncentre = "x"\n')  # no id
    r = CliRunner().invoke(app, ["node", "--config", str(bad)])
    assert r.exit_code == 2, r.output
    assert "配置错误 / configuration error" in r.stderr and "[node] id" in r.stderr, r.stderr
    r = CliRunner().invoke(app, ["node", "--config", str(tmp_path / "missing.toml")])
    assert r.exit_code == 2 and "missing.toml" in r.stderr, r.stderr
    bad.write_text("[node\n")  # not TOML
    r = CliRunner().invoke(app, ["node", "--config", str(bad)])
    assert r.exit_code == 2 and "配置错误 / configuration error" in r.stderr, r.output
