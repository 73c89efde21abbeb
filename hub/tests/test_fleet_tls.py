"""TLS to a real Mosquitto listener with a throwaway CA: the hub (mqtts://, [broker] ca) and
a Pi node's config; a client trusting another CA refuses the broker."""

from __future__ import annotations

import ssl

import aiomqtt
import pytest

from onewindow.hub import config as hub_config
from onewindow.hub.fleet import registry
from onewindow.hub.fleet.cli import node_toml
from onewindow.node import config as node_config
from onewindow.node.link import tls_context
from onewindow.tools.testkit.testbed import FleetMosquitto, make_test_ca, write_config

from .test_hub_mqtt import serving


@pytest.fixture
def tls_broker(tmp_path):
    certs = make_test_ca(tmp_path / "ca")
    broker = FleetMosquitto(None, tmp_path / "broker", cert_dir=certs)
    path = write_config(tmp_path / "centre.toml", "s1", None, tmp_path / "hub.db", windows=1,
                        devices=[], extra=f'\n[broker]\nurl = "mqtts://127.0.0.1:'
                                          f'{broker.tls_port}"\nca = "{certs / "ca.crt"}"\n')
    broker.config = hub_config.load(path)
    registry.provision(broker.config, "node-1", "node", 1, "rpi")  # makes the fleet secret
    with broker:
        yield broker


async def test_the_hub_connects_over_tls(tls_broker, small_catalog_file) -> None:
    import dataclasses

    cfg = dataclasses.replace(tls_broker.config, catalog_path=str(small_catalog_file))
    async with serving(cfg) as runner:
        assert runner.broker.tls and runner.broker.port == tls_broker.tls_port
        assert runner.broker.username == "ow-hub-s1"


async def test_a_node_config_with_tls_connects_and_another_ca_is_refused(
        tls_broker, tmp_path) -> None:
    dev = registry.provision(tls_broker.config, "node-1", "node", 1, "rpi")
    assert dev["broker"]["tls"] and dev["broker"]["port"] == tls_broker.tls_port
    text = node_toml(dev, None).replace('secret_file = "/etc/onewindow/centre.key"',
                                        'secret = "0123456789abcdef0123"')
    (tmp_path / "node.toml").write_text(text)
    nc = node_config.load(tmp_path / "node.toml")
    assert nc.broker_tls and nc.broker_ca and "BEGIN CERTIFICATE" in nc.broker_ca
    async with aiomqtt.Client(nc.broker_host, nc.broker_port, identifier=nc.id,
                              username=nc.broker_user, password=nc.broker_password,
                              tls_context=tls_context(nc), timeout=5):
        pass
    other = make_test_ca(tmp_path / "other")
    wrong = ssl.create_default_context(cafile=str(other / "ca.crt"))
    with pytest.raises((aiomqtt.MqttError, ssl.SSLError)):
        async with aiomqtt.Client(nc.broker_host, nc.broker_port, identifier=nc.id,
                                  username=nc.broker_user, password=nc.broker_password,
                                  tls_context=wrong, timeout=5):
            pass
    with pytest.raises(aiomqtt.MqttError):  # plain MQTT on the TLS port
        async with aiomqtt.Client(nc.broker_host, nc.broker_port, identifier=nc.id,
                                  username=nc.broker_user, password=nc.broker_password,
                                  timeout=3):
            pass
