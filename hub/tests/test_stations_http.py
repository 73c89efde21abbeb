"""Community stations over HTTP (the hub's app in-process): a station opens a case with a
sealed ID number and photos; the same key again answers the earlier result, other content
under it is refused, and so is a replay after the hand-over; hand-overs are counted on both
sides; a station sees only its own cases, and the other roles none of its pages; the ID
number is in no journal record."""

from __future__ import annotations

import base64
import io
import json
import warnings

import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from PIL import Image

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.config import HubConfig
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import Registry
from onewindow.hub.station_config import StationsConfig
from onewindow.hub.store.accounts import Accounts
from onewindow.hub.store.files import FileStore
from onewindow.hub.web.app import create_app
from onewindow.hub.web.idseal import INFO, id_ok
from onewindow.hub.web.site import Site
from onewindow.node.card import resident_token

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

T0 = 1_795_500_000.0
PASSWORD = "password-1"
CARD_KEY = b"centre-card-key-0123456789abcdef"
ITEM = "SOC-003"  # materials 0-2 required
ID1 = "11010519491231002X"
ID2 = "110105194912310029"  # not valid: wrong check character


def with_check(first17: str) -> str:
    """A resident ID number: 17 digits and the check character (GB 11643)."""
    w = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * k for d, k in zip(first17, w, strict=True)) % 11]


ID3 = with_check("31010119900101123")


def jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(buf, "JPEG")
    return buf.getvalue()


def seal(public: str, number: str) -> str:
    """What station.js does: ECIES to the hub's public key."""
    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).decode().rstrip("=")
    raw = base64.urlsafe_b64decode(public + "=" * (-len(public) % 4))
    hub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    eph = ec.generate_private_key(ec.SECP256R1())
    epk = eph.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    key = HKDF(hashes.SHA256(), 32, epk, INFO).derive(eph.exchange(ec.ECDH(), hub))
    iv = b"0123456789ab"
    return ".".join(b64(x) for x in (epk, iv, AESGCM(key).encrypt(iv, number.encode(), None)))


class Env:
    def __init__(self, tmp_path, card_key: bool = True):
        self.now = T0
        key_file = tmp_path / "centre.key"
        key_file.write_bytes(CARD_KEY + b"\n")
        core = Centre(load_catalog(None), CentreConfig("t", (WindowSpec(1),)))
        self.hub = HubApp(core, Registry([]), "b")
        self.site = Site(self.hub, None, lambda: self.now)
        self.site.accounts = Accounts(f"sqlite:///{tmp_path}/hub.db",
                                      PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        for user, role, station in (("st1", "station", "S01"), ("st2", "station", "S02"),
                                    ("back", "backoffice", None), ("admin", "admin", None),
                                    ("clerk", "clerk", None)):
            self.site.accounts.add(user, PASSWORD, role, window=1 if role == "clerk" else None,
                                   now=T0, station=station)
        config = HubConfig(core.config, stations=StationsConfig(
            {"S01": "幸福里社区工作站", "S02": "长乐居委会"},
            str(key_file) if card_key else None))
        self.files = FileStore(tmp_path / "files")
        self.app = create_app(self.hub, self.files, site=self.site, clock=lambda: self.now,
                              config=config)
        self.records: list = []
        self.site.port.subscribe(lambda step: self.records.extend(step.records))
        self.public = self._public() if card_key else _any_public_key()

    def _public(self) -> str:
        """The hub's sealing key, as the station page gives it to the browser."""
        page = self.client("st1").get("/station", headers={"accept": "text/html"})
        assert page.status_code == 200, page.text
        return page.text.split('data-seal="', 1)[1].split('"', 1)[0]

    def client(self, user: str) -> TestClient:
        cl = TestClient(self.app)
        cl.get("/login")
        cl.headers["x-csrf-token"] = cl.cookies["ow_csrf"]
        r = cl.post("/login", data={"username": user, "password": PASSWORD,
                                    "csrf": cl.cookies["ow_csrf"]}, follow_redirects=False)
        assert r.status_code == 303, r.text
        return cl

    def submit(self, cl: TestClient, key: str, number: str = ID1, materials: str = "0,1,2",
               photos: tuple[bytes, ...] | None = None, item: str = ITEM):
        photos = (jpeg((200, 10, 10)),) if photos is None else photos
        files = [("photo", (f"p{n}.jpg", p, "image/jpeg")) for n, p in enumerate(photos)]
        data = {"key": key, "item": item, "materials": materials,
                "id_sealed": seal(self.public, number), "collected_at": str(self.now - 30)}
        # every part in one multipart body (httpx: a part without a file name is a field)
        fields = [(k, (None, v)) for k, v in data.items()]
        return cl.post("/station/cases", files=fields + files)


def _any_public_key() -> str:
    raw = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.site.accounts.close()


def test_a_station_opens_a_case_routed_like_a_window_case(env):
    cl = env.client("st1")
    r = env.submit(cl, "key-0001", photos=(jpeg((200, 10, 10)), jpeg((10, 200, 10))))
    assert r.status_code == 201, r.text
    body = r.json()
    case = env.hub.centre.cases[body["case"]]
    assert body["repeat"] is False and body["due_day"] == case.due_day
    assert case.department == env.hub.centre.catalog.items[ITEM].approver
    assert case.resident == resident_token(CARD_KEY, ID1)  # the card path's token
    stored = env.files.list(case.id)
    assert len(stored) == 2 and {f.kind for f in stored} == {"photo"}
    # the back office sees it on /cases like any other
    back = env.client("back")
    assert case.id in back.get("/cases", headers={"accept": "text/html"}).text
    # the ID number is in no journal record, nor its seal
    text = json.dumps([r.body for r in env.records])
    assert ID1 not in text and ID1[:6] + "19491231" not in text and "id_sealed" not in text


def test_the_same_key_answers_the_earlier_result_and_never_duplicates(env):
    cl = env.client("st1")
    first = env.submit(cl, "key-0001")
    n = len(env.records)
    again = env.submit(cl, "key-0001")  # a new seal of the same number: same content
    assert again.status_code == 200 and again.json()["repeat"] is True
    assert again.json()["case"] == first.json()["case"]
    assert len(env.hub.centre.cases) == 1 and len(env.records) == n  # nothing journaled
    assert len(env.files.list(first.json()["case"])) == 1


@pytest.mark.parametrize("edit", ["photo", "number", "materials"])
def test_the_same_key_with_edited_content_is_refused(env, edit):
    cl = env.client("st1")
    case = env.submit(cl, "key-0001").json()["case"]
    n = len(env.records)
    other = {"photo": {"photos": (jpeg((1, 2, 250)),)},
             "number": {"number": ID3},
             "materials": {"materials": "0,1,2,3"}}[edit]
    assert id_ok(ID3) and id_ok(ID1) and not id_ok(ID2)
    r = env.submit(cl, "key-0001", **other)
    assert r.status_code == 409 and r.json()["code"] == "station_edited"
    assert r.json()["case"] == case and case in r.json()["msg"]
    assert len(env.records) == n and len(env.files.list(case)) == 1


def test_hand_over_counts_on_both_sides_and_a_replay_after_it_is_refused(env):
    cl = env.client("st1")
    cases = [env.submit(cl, f"key-000{n}", photos=(jpeg((n, 9, 9)),)).json()["case"]
             for n in range(3)]
    assert cl.get("/station/cases").json()["pending"] == 3
    r = cl.post("/station/handover", json={"count": 2})
    assert r.status_code == 409 and r.json()["code"] == "count_mismatch"
    r = cl.post("/station/handover", json={"count": "3"})
    assert r.status_code == 400
    r = cl.post("/station/handover", json={"count": 3})
    assert r.status_code == 201 and r.json()["cases"] == cases
    batch = r.json()["id"]
    again = env.submit(cl, "key-0000", photos=(jpeg((0, 9, 9)),))
    assert again.status_code == 409 and again.json()["code"] == "station_handed_over"
    assert again.json()["batch"] == batch
    back = env.client("back")
    listed = back.get("/stations/handovers").json()["batches"]
    assert [b["id"] for b in listed] == [batch] and listed[0]["station_name"] == "幸福里社区工作站"
    r = back.post(f"/stations/handovers/{batch}/receive", json={"count": 4})
    assert r.status_code == 409 and r.json()["code"] == "count_mismatch"
    r = back.post(f"/stations/handovers/{batch}/receive", json={"count": 3})
    assert r.status_code == 200 and r.json()["received_by"] == "back"
    r = back.post(f"/stations/handovers/{batch}/receive", json={"count": 3})
    assert r.status_code == 409 and r.json()["code"] == "already_received"
    assert back.get("/stations/handovers", headers={"accept": "text/html"}).status_code == 200


def test_a_station_sees_only_its_own_cases_and_roles_are_kept(env):
    one, two = env.client("st1"), env.client("st2")
    mine = env.submit(one, "key-0001").json()["case"]
    theirs = env.submit(two, "key-0002").json()["case"]
    assert [k["case"] for k in one.get("/station/cases").json()["cases"]] == [mine]
    assert [k["case"] for k in two.get("/station/cases").json()["cases"]] == [theirs]
    # S02 cannot use S01's key to reach S01's case
    r = env.submit(two, "key-0001")
    assert r.status_code == 409 and r.json()["code"] == "station_edited"
    # S02's hand-over takes only S02's case
    assert two.post("/station/handover", json={"count": 1}).json()["cases"] == [theirs]
    for path in ("/cases", "/stations/handovers", "/console", "/accounts"):
        assert one.get(path).status_code == 403, path
    for user in ("back", "admin", "clerk"):
        cl = env.client(user)
        assert cl.get("/station/cases").status_code == 403, user
        assert env.submit(cl, f"key-{user}-1").status_code == 403, user
    assert TestClient(env.app).get("/station/cases").status_code == 401


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"number": ID2}, 400, "bad_id"),
    ({"materials": "0,1"}, 400, "materials_missing"),
    ({"materials": "0,x"}, 400, "bad_field"),
    ({"photos": ()}, 400, "bad_field"),
    ({"item": "NOPE"}, 400, "unknown_item"),
])
def test_bad_submissions_are_refused_and_change_nothing(env, kwargs, status, code):
    cl = env.client("st1")
    r = env.submit(cl, "key-0001", **kwargs)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert env.hub.centre.cases == {} and env.records == []
    if code == "bad_id":
        assert ID2 not in r.text


def test_a_png_or_a_broken_seal_is_refused(env):
    cl = env.client("st1")
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PNG")
    r = cl.post("/station/cases", data={"key": "key-0001", "item": ITEM, "materials": "0,1,2",
                                        "id_sealed": seal(env.public, ID1)},
                files=[("photo", ("p.png", buf.getvalue(), "image/png"))])
    assert r.status_code == 415
    r = cl.post("/station/cases", data={"key": "key-0001", "item": ITEM, "materials": "0,1,2",
                                        "id_sealed": "a.b.c"},
                files=[("photo", ("p.jpg", jpeg((1, 1, 1)), "image/jpeg"))])
    assert r.status_code == 400 and r.json()["code"] == "bad_seal"
    assert env.hub.centre.cases == {}


@pytest.mark.parametrize(("lang", "words"), [("zh-CN", "社区工作站"), ("zh-TW", "社區工作站"),
                                             ("en", "Community station")])
def test_the_station_page_in_three_languages(env, lang, words):
    cl = env.client("st1")
    page = cl.get(f"/station?lang={lang}", headers={"accept": "text/html"})
    assert page.status_code == 200 and words in page.text
    assert "幸福里社区工作站" in page.text
    assert 'capture="environment"' in page.text and 'accept="image/*"' in page.text


def test_without_a_card_key_a_station_cannot_open_cases(tmp_path):
    e = Env(tmp_path, card_key=False)
    try:
        cl = e.client("st1")
        page = cl.get("/station", headers={"accept": "text/html"})
        assert page.status_code == 200 and 'id="no-key"' in page.text
        r = e.submit(cl, "key-0001")
        assert r.status_code == 503 and r.json()["code"] == "no_card_key"
    finally:
        e.site.accounts.close()


def test_search_and_item_answer_the_kiosks_lists(env):
    cl = env.client("st1")
    found = cl.get("/station/search.json", params={"q": "退休"}).json()["items"]
    assert found and all("zh_tw" in i for i in found)
    item = cl.get(f"/station/items/{ITEM}").json()
    assert [m["required"] for m in item["materials"]] == [True, True, True, False]
    assert cl.get("/station/items/NOPE").status_code == 404



def test_a_card_key_file_that_cannot_be_read_is_a_configuration_error(tmp_path):
    from onewindow.hub.config import ConfigError

    core = Centre(load_catalog(None), CentreConfig("t", (WindowSpec(1),)))
    hub = HubApp(core, Registry([]), "b")
    site = Site(hub, None, lambda: T0)
    site.accounts = Accounts(f"sqlite:///{tmp_path}/hub.db")
    (tmp_path / "short.key").write_bytes(b"short")
    try:
        for key in (tmp_path / "missing.key", tmp_path / "short.key"):
            config = HubConfig(core.config, stations=StationsConfig({}, str(key)))
            with pytest.raises(ConfigError, match="card_key_file"):
                create_app(hub, FileStore(tmp_path / "files"), site=site, config=config)
    finally:
        site.accounts.close()
