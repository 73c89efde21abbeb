"""The hub's HTTP upload API, in a real hub process loop with a private Mosquitto: a ticket is
issued over MQTT by a simulated button box, a window node's page photo is uploaded with the
node's own upload client, listed, and found on disk; bad uploads change nothing on disk."""

import hashlib
import json
import os

import httpx
import pytest

from onewindow.hub import config as hub_config
from onewindow.hub.store.files import FileStore, default_files_dir
from onewindow.node.camera import FakeSource, capture_document
from onewindow.node.tests.pages import photograph, render_page
from onewindow.node.upload import UploadError, upload
from onewindow.tools.simdevice import SimDevice
from onewindow.tools.testkit.testbed import default_devices

from .test_hub_mqtt import CENTRE, running_hub

TOKEN = "node-1-secret"


def web_hub(tmp_path, port, catalog, tokens=True):
    """A hub in this process with the HTTP API on a free port (test_hub_mqtt.running_hub)."""
    devices = [*default_devices(2), {"id": "node-1", "role": "node", "window": 1}]
    if tokens:
        devices[-1]["token"] = TOKEN
    return running_hub(tmp_path, port, catalog, windows=2, devices=devices,
                       extra='\n[web]\nhost = "127.0.0.1"\nport = 0\n')


def tree(root):
    """Every file under `root` with its size: what "nothing changed on disk" compares."""
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = os.path.getsize(p)
    return out


async def take(port):
    async with SimDevice(CENTRE, "box-1", "box", "127.0.0.1", port) as box:
        res = await box.send("take", item="SOC-1")
    return res["ticket"]


async def page_jpeg(seed=1):
    doc = await capture_document(FakeSource([photograph(render_page(seed), 12, seed=seed).image]))
    return doc.data


async def test_a_page_photo_is_stored_with_the_ticket_and_listed(
        tmp_path, mosquitto, small_catalog_file):
    async with web_hub(tmp_path, mosquitto.port, small_catalog_file) as runner:
        number = await take(mosquitto.port)
        ticket = runner.app.centre.find_ticket(number)
        assert ticket is not None and ticket.id.endswith(number)
        jpeg = await page_jpeg()
        res = await upload(runner.web.url, ticket.id, "page.jpg", jpeg, "image/jpeg",
                           token=TOKEN)
        digest = hashlib.sha256(jpeg).hexdigest()
        assert res == {"ticket": ticket.id, "file": f"1-{digest[:12]}.jpg", "bytes": len(jpeg),
                       "sha256": digest}
        files_dir = tmp_path / "hub-files"
        assert default_files_dir(f"sqlite:///{tmp_path / 'hub.db'}") == str(files_dir)
        stored = files_dir / ticket.day / ticket.id / res["file"]
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest
        assert not [p for p in stored.parent.iterdir() if p.name.startswith(".tmp-")]

        # the same bytes again (a retry whose answer was lost), by today's number: one file
        again = await upload(runner.web.url, number, "page.jpg", jpeg, "image/jpeg",
                             token=TOKEN)
        assert again == res
        pdf = b"%PDF-1.4\n% a one-page scan\n%%EOF\n"
        res2 = await upload(runner.web.url, ticket.id, "scan.pdf", pdf, "application/pdf",
                            token=TOKEN)
        assert res2["file"].startswith("2-") and res2["file"].endswith(".pdf")

        async with httpx.AsyncClient() as http:
            r = await http.get(f"{runner.web.url}/api/tickets/{number}/files",
                               headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
        listed = r.json()
        assert listed["ticket"] == ticket.id
        assert [(f["file"], f["sha256"], f["bytes"], f["content_type"], f["device"])
                for f in listed["files"]] == [
            (res["file"], digest, len(jpeg), "image/jpeg", "node-1"),
            (res2["file"], hashlib.sha256(pdf).hexdigest(), len(pdf), "application/pdf",
             "node-1")]
        assert sorted(tree(files_dir)) == sorted(
            f"{ticket.day}/{ticket.id}/{n}" for n in (res["file"], res2["file"], "index.jsonl"))


async def test_bad_uploads_get_clear_errors_and_change_nothing_on_disk(
        tmp_path, mosquitto, small_catalog_file):
    async with web_hub(tmp_path, mosquitto.port, small_catalog_file) as runner:
        number = await take(mosquitto.port)
        ticket_id = runner.app.centre.find_ticket(number).id
        jpeg = await page_jpeg(2)
        await upload(runner.web.url, ticket_id, "p.jpg", jpeg, "image/jpeg", token=TOKEN)
        files_dir = tmp_path / "hub-files"
        before = tree(files_dir)
        url = f"{runner.web.url}/api/tickets/{ticket_id}/files"
        auth = {"Authorization": f"Bearer {TOKEN}"}

        async with httpx.AsyncClient() as http:
            async def post(files=None, headers=auth, target=url, **kw):
                return await http.post(target, files=files, headers=headers, **kw)

            one = {"file": ("x.jpg", b"\xff\xd8\xff\xe0" + b"1" * 100, "image/jpeg")}
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                r = await post(one, headers=headers)
                assert r.status_code == 401 and r.json()["code"] == "unauthorized"
                assert r.headers["www-authenticate"] == "Bearer"
            r = await http.get(url)
            assert r.status_code == 401

            r = await post(one, target=f"{runner.web.url}/api/tickets/20200101-Z999/files")
            assert r.status_code == 404
            assert r.json()["code"] == "unknown_ticket" and "20200101-Z999" in r.json()["msg"]
            with pytest.raises(UploadError) as e:
                await upload(runner.web.url, "B404", "p.jpg", jpeg, "image/jpeg", token=TOKEN)
            assert e.value.status == 404 and e.value.code == "unknown_ticket"

            big = b"\xff\xd8\xff" + b"0" * (10 * 1024 * 1024)
            r = await post({"file": ("big.jpg", big, "image/jpeg")})
            assert r.status_code == 413 and r.json()["code"] == "too_large"

            async def chunked():  # no Content-Length: the body is cut off while it streams
                yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\""
                yield b"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff"
                for _ in range(12):
                    yield b"0" * (1024 * 1024)
                yield b"\r\n--b--\r\n"

            r = await http.post(url, content=chunked(), headers={
                **auth, "Content-Type": "multipart/form-data; boundary=b"})
            assert r.status_code == 413

            r = await post({"file": ("notes.txt", b"hello", "text/plain")})
            assert r.status_code == 415 and r.json()["code"] == "unsupported_type"
            r = await post({"file": ("fake.jpg", b"%PDF-1.4 not a jpeg", "image/jpeg")})
            assert r.status_code == 415
            r = await post({"file": ("x.png", b"\x89PNG\r\n\x1a\n", "image/png")})
            assert r.status_code == 415
            r = await post(data={"kind": "page"}, files={"other": ("x.jpg", b"\xff\xd8\xff",
                                                                   "image/jpeg")})
            assert r.status_code == 400 and r.json()["code"] == "no_file"
            r = await http.post(url, content=b'{"file": 1}',
                                headers={**auth, "Content-Type": "application/json"})
            assert r.status_code == 400
            r = await post(one, data={"kind": "selfie"})
            assert r.status_code == 400 and r.json()["code"] == "bad_kind"
        assert tree(files_dir) == before
        listed = runner.web.files.list(ticket_id)
        assert len(listed) == 1
        # the hub is still fine over MQTT after all that
        assert await take(mosquitto.port)


async def test_without_tokens_configured_uploads_need_none(tmp_path, mosquitto,
                                                           small_catalog_file):
    async with web_hub(tmp_path, mosquitto.port, small_catalog_file, tokens=False) as runner:
        number = await take(mosquitto.port)
        res = await upload(runner.web.url, number, "p.jpg", await page_jpeg(3), "image/jpeg")
        assert res["ticket"].endswith(number)


def test_file_store_survives_a_crash_between_the_steps(tmp_path):
    store = FileStore(tmp_path / "files")
    tid = "20261123-A017"
    first, created = store.save(tid, b"\xff\xd8\xff one", "jpg", "image/jpeg")
    assert created and first.file.startswith("1-")
    d = store.ticket_dir(tid)
    (d / ".tmp-deadbeef").write_bytes(b"half a fi")  # a crash while writing
    orphan = d / "2-0123456789ab.jpg"  # a crash after the rename, before the index line
    orphan.write_bytes(b"\xff\xd8\xff orphan")
    with open(d / "index.jsonl", "a") as fh:  # ... and a torn index line
        fh.write('{"ticket": "20261123-A0')
    assert [f.file for f in store.list(tid)] == [first.file]
    second, created = store.save(tid, b"\xff\xd8\xff two", "jpg", "image/jpeg")
    assert created and second.file.startswith("3-")  # the orphan's number is not reused
    assert not (d / ".tmp-deadbeef").exists()
    assert [f.file for f in store.list(tid)] == [first.file, second.file]
    assert store.save(tid, b"\xff\xd8\xff one", "jpg", "image/jpeg") == (first, False)
    with pytest.raises(ValueError):
        store.ticket_dir("../../etc")
    lines = (d / "index.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["file"] == second.file


def test_web_config(tmp_path):
    base = {"centre": {"id": "c"}, "windows": [{"number": 1}],
            "devices": [{"id": "node-1", "role": "node", "window": 1, "token": "a"}]}
    cfg = hub_config.from_dict(base)
    assert cfg.web is None and cfg.device_tokens == {"a": "node-1"}
    assert cfg.files_dir == "onewindow-files"
    cfg = hub_config.from_dict({**base, "web": {"port": 9000},
                                "store": {"url": "sqlite:////srv/ow/hub.db"}})
    assert (cfg.web.host, cfg.web.port) == ("127.0.0.1", 9000)
    assert cfg.files_dir == "/srv/ow/hub-files"
    cfg = hub_config.from_dict({**base, "store": {"files_dir": "/data/files"}})
    assert cfg.files_dir == "/data/files"
    twice = {**base, "devices": base["devices"] + [{"id": "node-2", "role": "node",
                                                   "window": 1, "token": "a"}]}
    with pytest.raises(hub_config.ConfigError, match="token"):
        hub_config.from_dict(twice)
