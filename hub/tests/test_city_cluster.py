"""The city tier's transport (issue 20): a real 3-node NATS JetStream cluster with the
production accounts, R3 streams; a centre may publish only its own subtree; a node stopped
loses nothing that was acknowledged."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from onewindow.hub.city import streams
from onewindow.hub.city import subjects as sj
from onewindow.tools.testkit.nats_cluster import NatsCluster


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    with NatsCluster(tmp_path_factory.mktemp("city"), centres=["c01", "c02"]) as c:
        yield c


async def _streams(city: NatsCluster) -> None:
    nc = await city.connect()
    try:
        await streams.ensure_streams(nc.jetstream(), replicas=3)
        await streams.ensure_streams(nc.jetstream(), replicas=3)  # idempotent
    finally:
        await nc.close()


async def test_centre_publishes_only_its_own_subtree(city):
    await _streams(city)
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    nc = await city.connect_centre("c01", error_cb=on_error)
    try:
        js = nc.jetstream()
        ack = await js.publish(sj.record("c01", sj.TICKET), b"{}",
                               headers={"Nats-Msg-Id": sj.msg_id("c01", 1)})
        assert ack.stream == sj.STREAM and not ack.duplicate
        again = await js.publish(sj.record("c01", sj.TICKET), b"{}",
                                 headers={"Nats-Msg-Id": sj.msg_id("c01", 1)})
        assert again.duplicate and again.seq == ack.seq
        with pytest.raises(Exception):  # noqa: B017 - refused: no ack ever comes
            await js.publish(sj.record("c02", sj.TICKET), b"{}", timeout=1.0,
                             headers={"Nats-Msg-Id": sj.msg_id("c02", 1)})
        with pytest.raises(Exception):  # noqa: B017 - no stream administration either
            await js.delete_stream(sj.STREAM)
        said = [str(e) for e in errors]
        assert any('permissions violation for publish to "city.c02.ticket"' in e
                   for e in said), said
        assert any("stream.delete" in e.lower() for e in said), said
    finally:
        await nc.close()
    admin = await city.connect()
    try:
        info = await admin.jetstream().stream_info(sj.STREAM)
        assert info.config.num_replicas == 3
        names = {s.config.name for s in await admin.jetstream().streams_info()}
        assert {sj.STREAM, sj.STREAM_LIVE, sj.STREAM_DOWN, sj.STREAM_ALL} <= names
        assert "city.c02.ticket" not in await _subjects(admin)
    finally:
        await admin.close()


async def _subjects(nc) -> set[str]:
    info = await nc.jetstream().stream_info(sj.STREAM, subjects_filter=">")
    return set((info.state.subjects or {}).keys())


async def test_a_node_stopped_loses_nothing_acknowledged(city):
    await _streams(city)
    nc = await city.connect_centre("c02")
    admin = await city.connect()
    try:
        js = nc.jetstream()
        before = (await admin.jetstream().stream_info(sj.STREAM)).state.messages
        for pos in range(1, 51):
            # As the exporter does: the same message again until the stream acknowledges
            # it (a leader election after the kill takes seconds); its id dedupes retries.
            async with asyncio.timeout(30):
                while True:
                    try:
                        await js.publish(sj.record("c02", sj.TICKET), b"{}", timeout=2.0,
                                         headers={"Nats-Msg-Id": sj.msg_id("c02", pos)})
                        break
                    except Exception:  # no leader yet, the connection moving
                        await asyncio.sleep(0.2)
            if pos == 20:
                city.stop_node(0, kill=True)
        city.start_node(0)
        city.wait_ready()
        for _ in range(100):  # the restarted node catches up with the stream
            state = (await admin.jetstream().stream_info(sj.STREAM)).state
            if state.messages == before + 50:
                break
            await asyncio.sleep(0.05)
        assert state.messages == before + 50
    finally:
        await nc.close()
        await admin.close()


def _self_signed(folder) -> tuple:
    """A node certificate for 127.0.0.1 / localhost, its own CA (server and client auth:
    the routes check each other with it)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "onewindow-city-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, True, False, False,
                                         False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "node.pem", folder / "node.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_city_nats_config_with_tls_parses_and_a_tls_cluster_runs(tmp_path):
    """`onewindow city-nats-config --tls-*` writes files nats-server accepts; a 2-node
    cluster on that configuration forms its routes over mutual TLS, takes a centre's
    record over tls:// with the CA, and a client that does not trust the CA is refused."""
    import ssl
    import subprocess
    import sys

    import nats

    from onewindow.hub.city import natsconf
    from onewindow.tools.testkit.nats_cluster import nats_server_binary

    cert, key = _self_signed(tmp_path / "tls")
    (tmp_path / "centres").write_text("c01 pw-c01\n")
    (tmp_path / "services").write_text("city-admin admin-pw\nsys sys-pw\n")
    out = subprocess.run(
        [sys.executable, "-m", "onewindow.hub.cli", "city-nats-config", "--nodes",
         "city-1=127.0.0.1:4222:6222:8222,city-2=127.0.0.1:4223:6223:8223",
         "--centres", str(tmp_path / "centres"), "--services", str(tmp_path / "services"),
         "--store", str(tmp_path / "js"), "--out", str(tmp_path / "conf"),
         "--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(cert)],
        capture_output=True, text=True, check=True)
    for path in out.stdout.split():
        text = Path(path).read_text()
        assert text.count(f'cert_file: "{cert}"') == 2 and "verify: true" in text
        checked = subprocess.run([nats_server_binary(), "-t", "-c", path],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    bad = subprocess.run([sys.executable, "-m", "onewindow.hub.cli", "city-nats-config",
                          "--nodes", "a=127.0.0.1:1:2:3", "--centres", str(tmp_path / "centres"),
                          "--services", str(tmp_path / "services"), "--out",
                          str(tmp_path / "bad"), "--tls-cert", str(cert)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--tls-key" in bad.stderr and not (tmp_path / "bad").exists()

    trust = ssl.create_default_context(cafile=str(cert))
    with NatsCluster(tmp_path / "nats", centres=["c01"], size=2,
                     tls=natsconf.Tls(cert, key, cert)) as city:  # routes up: wait_ready
        varz = city.monitor(0, "varz")
        assert varz["tls_required"] and varz["cluster"]["tls_required"]
        assert varz["cluster"]["tls_verify"]
        assert all(u.startswith("tls://") for u in city.urls)

        async def go() -> None:
            nc = await city.connect_centre("c01", tls=trust)
            admin = await city.connect(tls=trust)
            try:
                await streams.ensure_streams(admin.jetstream(), replicas=2)
                ack = await nc.jetstream().publish(
                    sj.record("c01", sj.TICKET), b"{}",
                    headers={"Nats-Msg-Id": sj.msg_id("c01", 1)})
                assert ack.stream == sj.STREAM
            finally:
                await nc.close()
                await admin.close()
            with pytest.raises(Exception):  # noqa: B017 - the node's certificate untrusted
                await nats.connect(servers=city.urls[:1], user="city-admin",
                                   password="admin-pw", allow_reconnect=False,
                                   connect_timeout=2)

        asyncio.run(go())
