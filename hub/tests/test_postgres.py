"""The same journal and hub on a real PostgreSQL server started for the test."""

import pytest

from onewindow.hub import config as hub_config
from onewindow.hub.runner import build_app
from onewindow.hub.store.journal import Journal, Record
from onewindow.tools.simdevice import SimDevice
from onewindow.tools.testkit.testbed import Postgres

from .test_hub_mqtt import CENTRE, running_hub


@pytest.fixture(scope="module")
def postgres():
    with Postgres() as pg:
        yield pg


def test_journal_round_trip_and_single_writer(postgres):
    j = Journal(postgres.url)
    start = j.last_pos()
    recs = [Record(start + i, 1.5 * i, "box-1", i, {"op": "take", "item": "SOC-1", "n": "张*明"})
            for i in range(1, 4)]
    j.append(recs)
    assert j.last_pos() == start + 3
    assert list(j.read(after=start)) == recs
    with pytest.raises(Exception):  # noqa: B017 - the driver's IntegrityError
        j.append([recs[0]])  # a second writer reusing a position is refused
    assert j.last_pos() == start + 3
    j.close()


async def test_hub_on_postgres_rebuilds_its_state_after_a_restart(
        tmp_path, mosquitto, postgres, small_catalog_file):
    j = Journal(postgres.url)
    j.engine.dispose()
    with j.engine.begin() as conn:  # a clean journal for this centre
        conn.exec_driver_sql("DELETE FROM journal")
    async with running_hub(tmp_path, mosquitto.port, small_catalog_file,
                           database_url=postgres.url), \
            SimDevice(CENTRE, "box-1", "box", "127.0.0.1", mosquitto.port) as box:
        first = (await box.send("take", item="SOC-1"))["ticket"]
    async with running_hub(tmp_path, mosquitto.port, small_catalog_file,
                           database_url=postgres.url), \
            SimDevice(CENTRE, "box-1", "box", "127.0.0.1", mosquitto.port, seq=1) as box:
        second = (await box.send("take", item="SOC-1"))["ticket"]
    assert (first, second) == ("A001", "A002")  # numbering continued from the journal
    cfg = hub_config.load(tmp_path / "centre.toml")
    app = build_app(cfg, j)
    assert {"A001", "A002"} <= {t.number for t in app.centre.tickets.values()}
    j.close()


def test_staff_accounts_and_sessions_on_postgres(postgres):
    from argon2 import PasswordHasher

    from onewindow.hub.store.accounts import IDLE_S, Accounts

    accounts = Accounts(postgres.url, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    try:
        acc = accounts.add("pg-clerk", "password-1", "clerk", "张三", window=2, now=1.0)
        assert accounts.verify("pg-clerk", "password-1") == acc
        token = accounts.start_session(acc, 100.0)
        s = accounts.session(token, 200.0)
        assert s is not None and s.window == 2 and s.account.display == "张三"
        assert accounts.session(token, 200.0 + IDLE_S + 1) is None
        assert [a.username for a in accounts.list()] == ["pg-clerk"]
    finally:
        accounts.close()


def test_fleet_registry_on_postgres_through_the_one_engine(postgres):
    """The registry opens the hub's database like the journal does (hub/store/db.py): the
    same schema version, a server's pre-ping and connect timeout, its rows in its tables."""
    from onewindow.hub.fleet.registry import Fleet, FleetDevice
    from onewindow.hub.store import db

    with Fleet(postgres.url) as fleet:
        assert db.revision(fleet.engine) == db.HEAD
        assert fleet.engine.pool._pre_ping
        with fleet.engine.connect() as conn:
            assert "connect_timeout=5" in conn.connection.dbapi_connection.info.dsn
        secret = fleet.secret(create=True)
        assert secret is not None and fleet.secret(create=True) == secret  # made once
        dev = FleetDevice("pg-led-1", "led", 2, "esp32-devkitc", 0, False, 1.0, 1.0)
        fleet.put(dev, existed=False)
    with Fleet(postgres.url) as again:
        assert again.get("pg-led-1") == dev and again.secret() == secret
