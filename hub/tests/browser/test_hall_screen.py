"""The hall screen (issue 18) in real headless Chromium against a real hub and Mosquitto:

- at 1920x1080, 1600x900 and 1280x720, in zh-CN, zh-TW and English, with long English line
  names: the window number is as large as the ticket number (>= 0.8x), every text of the
  wait strip is readable at 5 m (>= 1/24 of the screen's height: a character 20 arc-minutes
  high at 5 m is 29 mm, 1/24 of a 55-inch screen's 685 mm), and no text is cut off or
  overflows, on every page of the wait strip, which shows every line; ticket and window
  numbers are drawn in DejaVu Sans, which tells I from 1 and O from 0;
- Chromium started with the flags of docs/deploy/onewindow-hall.service (the kiosk launch)
  plays the announcements with no click; a Chromium without them shows a red "sound blocked:
  click here" bar in the page's language, and one click plays what was waiting.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from playwright.sync_api import expect

from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.testbed import HubProcess, Mosquitto, default_devices, write_config

from .conftest import CENTRE, CHROMIUM, REPO, WebHub, _wait_http, shot
from .test_staff_pages import Device

pytestmark = pytest.mark.timeout(120)
UNIT = REPO / "docs" / "deploy" / "onewindow-hall.service"
WINDOWS = 12
# As a centre's own catalog may name its lines in English.
LONG_EN = {
    "household": "Household registration, identity cards and residence certificates",
    "employment": "Employment, unemployment registration and entrepreneurship support",
    "general": "General affairs and other services not listed elsewhere",
    "veterans": "Veterans affairs and services for ex-servicemen and their families",
}
SIZES = [(1920, 1080), (1600, 900), (1280, 720)]
LANGS = ["zh_CN", "zh_TW", "en"]
READABLE_AT_5M = 1 / 24  # of the screen's height, see the module's docstring
KEYPADS: dict[int, Device] = {}  # one per window for the module: each numbers its events

# Every visible element: its box inside the screen, its content inside its box (scrollWidth/
# scrollHeight: text cut off by overflow:hidden or an ellipsis, or spilling out of it).
MEASURE = """(rule) => {
  const W = innerWidth, H = innerHeight, bad = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (el.className && typeof el.className === "string" ? "." + el.className.split(" ")[0] : "");
  const ownText = (el) => [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  for (const el of document.querySelectorAll("body *")) {
    if (el.tagName === "SCRIPT" || !el.getClientRects().length) continue;
    const r = el.getBoundingClientRect();
    if (r.left < -0.5 || r.top < -0.5 || r.right > W + 0.5 || r.bottom > H + 0.5) {
      bad.push(`${name(el)} outside the screen: ${JSON.stringify(r)}`);
    }
    const cs = getComputedStyle(el);
    if (cs.display !== "inline" && (el.clientWidth || el.clientHeight)
        && (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1)) {
      bad.push(`${name(el)} content ${el.scrollWidth}x${el.scrollHeight} in `
               + `${el.clientWidth}x${el.clientHeight}: "${el.textContent.trim().slice(0, 60)}"`);
    }
  }
  const px = (el) => parseFloat(getComputedStyle(el).fontSize);
  const strip = [...document.querySelectorAll(".waits *")]
    .filter((el) => el.getClientRects().length && ownText(el));
  return {bad, number: px(document.getElementById("now-number")),
          win: px(document.getElementById("now-win")),
          strip_min: Math.min(...strip.map(px)),
          strip_small: strip.filter((el) => px(el) < H * rule)
            .map((el) => `${name(el)} ${px(el)}px "${el.textContent.trim()}"`),
          recent_rows: [...document.querySelectorAll("#recent tbody tr")]
            .filter((r) => !r.hidden).length,
          recent_px: px(document.querySelector("#recent td") || document.body),
          lines: [...document.querySelectorAll("#waits li")].filter((li) => !li.hidden)
            .map((li) => li.dataset.line)};
}"""


@pytest.fixture(scope="module")
def hall_hub(tmp_path_factory) -> Iterator[WebHub]:
    """One hub for the module: 12 comprehensive windows all open, a ticket waiting in every
    line, eight calls made (the last a priority ticket recalled at window 12), long English
    line names."""
    tmp = tmp_path_factory.mktemp("hall")
    data = json.loads(resources.files("onewindow.hub.catalog")
                      .joinpath("sample_catalog.json").read_text(encoding="utf-8"))
    for line in data["lines"]:
        line["en"] = LONG_EN.get(line["id"], line["en"])
    catalog = tmp / "catalog.json"
    catalog.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    port = quiet_port()
    with Mosquitto(tmp / "broker") as broker:
        cfg = write_config(tmp / "centre.toml", CENTRE, broker.port, tmp / "hub.db",
                           windows=WINDOWS, devices=default_devices(WINDOWS),
                           extra=f"\n[web]\nport = {port}\n", catalog=catalog)
        hub = HubProcess(cfg, tmp / "hub.log").start()
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_http(url)
            one_each: dict[str, str] = {}
            for item in data["items"]:
                if "comprehensive" in item["window_kinds"]:
                    one_each.setdefault(item["line"], item["id"])
            box = Device(broker.port, "box-1", "box")
            box.send(("take", {"item": "SOC-001", "priority": "priority"}))  # A001
            KEYPADS.clear()
            for n in range(1, WINDOWS + 1):
                KEYPADS[n] = Device(broker.port, f"kp-{n}", "keypad", n)
                KEYPADS[n].send(("open", {}))
            assert KEYPADS[WINDOWS].send(("call", {}))[0]["ticket"] == "A001"
            box.send(*[("take", {"item": i}) for i in one_each.values()],
                     *[("take", {"item": "SOC-001"})] * 12)
            for n in (1, 2, 3, 5, 8, 10, 11):
                KEYPADS[n].send(("call", {}))
            KEYPADS[WINDOWS].send(("recall", {}))  # the newest call: priority, window 12
            yield WebHub(url, broker.port, tmp, hub, cfg)
        finally:
            hub.stop()


def open_hall(browser, hub: WebHub, size: tuple[int, int], lang: str, voice: str = "off"):
    ctx = browser.new_context(locale={"zh_CN": "zh-CN", "zh_TW": "zh-TW"}.get(lang, "en"),
                              viewport={"width": size[0], "height": size[1]})
    page = ctx.new_page()
    page.goto(f"{hub.url}/hall?lang={lang}&voice={voice}")
    return ctx, page


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_sizes_and_no_text_cut_off(hall_hub, chromium, size, lang):
    ctx, page = open_hall(chromium, hall_hub, size, lang)
    try:
        expect(page.locator("#now-number")).to_have_text("A001")
        expect(page.locator("#now-win")).to_have_text(str(WINDOWS))
        expect(page.locator("#now-prio")).to_be_visible()
        # every line's wait estimated (all windows open): the longest entries
        expect(page.locator("#waits .range")).to_have_count(12, timeout=15_000)
        page.evaluate("document.fonts.ready")
        pages = page.evaluate("window.__owHall.pages()")
        seen: list[str] = []
        for i in range(pages):
            page.evaluate(f"window.__owHall.show({i})")
            m = page.evaluate(MEASURE, READABLE_AT_5M)
            assert m["bad"] == [], (size, lang, i, m["bad"])
            assert m["win"] >= 0.8 * m["number"], m
            assert m["strip_small"] == [], m["strip_small"]
            assert m["strip_min"] >= size[1] * READABLE_AT_5M
            assert m["recent_rows"] >= 3, m  # larger entries, yet several recent calls
            assert m["lines"], f"page {i} of the wait strip is empty"
            seen += m["lines"]
            if i == 0:
                shot(page, f"hall-{size[0]}x{size[1]}-{lang}")
        assert sorted(seen) == sorted(set(seen)) and len(seen) == 12, seen  # each line once
        print(f"{size} {lang}: number {m['number']}px, window {m['win']}px, "
              f"strip >= {m['strip_min']}px (rule {size[1] * READABLE_AT_5M:.1f}), "
              f"recent {m['recent_rows']} rows at {m['recent_px']}px, {pages} strip pages")
    finally:
        ctx.close()


def test_the_strip_pages_itself_every_8_s(hall_hub, chromium):
    ctx = chromium.new_context(locale="en", viewport={"width": 1280, "height": 720})
    page = ctx.new_page()
    page.clock.install()  # the page's timers on a clock the test moves
    try:
        page.goto(f"{hall_hub.url}/hall?lang=en&voice=off")
        pages = page.evaluate("window.__owHall.pages()")
        assert pages > 1
        expect(page.locator("#waits-page")).to_have_text(f"1/{pages}")
        first = page.locator("#waits li:not([hidden])").first.get_attribute("data-line")
        page.clock.run_for(7_000)
        expect(page.locator("#waits-page")).to_have_text(f"1/{pages}")
        page.clock.run_for(1_000)
        expect(page.locator("#waits-page")).to_have_text(f"2/{pages}")
        assert page.locator("#waits li:not([hidden])").first.get_attribute("data-line") != first
        page.clock.run_for(8_000 * (pages - 1))
        expect(page.locator("#waits-page")).to_have_text(f"1/{pages}")  # and round again
    finally:
        ctx.close()


def test_numbers_in_a_face_that_tells_i_from_1_and_o_from_0(hall_hub, chromium):
    """The font Chromium really drew the ticket and window numbers with (DevTools' CSS
    domain), not only the one the style asks for."""
    ctx, page = open_hall(chromium, hall_hub, (1920, 1080), "zh_CN")
    try:
        expect(page.locator("#now-number")).to_have_text("A001")
        cdp = ctx.new_cdp_session(page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        for sel in ("#now-number", "#now-win", "#recent td", "#waits .prefix"):
            node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": sel})["nodeId"]
            fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
            assert [f["familyName"] for f in fonts] == ["DejaVu Sans"], (sel, fonts)
    finally:
        ctx.close()


# ---- voice, unattended ------------------------------------------------------------------
def unit_command(home: Path, url: str) -> list[str]:
    """The unit's ExecStart as systemd runs it: %h the user's home, ${HALL_URL} the page."""
    line = next(s for s in UNIT.read_text(encoding="utf-8").splitlines()
                if s.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    return [a.replace("%h", str(home)).replace("${HALL_URL}", url) for a in argv]


def test_the_unit_is_one_systemd_accepts(tmp_path):
    """`systemd-analyze --user verify`: every setting parses, ExecStart's program exists."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    done = subprocess.run(["systemd-analyze", "--user", "verify", str(UNIT)],
                          capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "XDG_RUNTIME_DIR": str(runtime)})
    assert (done.returncode, done.stdout + done.stderr) == (0, ""), done


def call(window: int) -> str:
    return str(KEYPADS[window].send(("call", {}))[0]["ticket"])


def test_the_kiosk_launch_announces_without_a_click(hall_hub, chromium, tmp_path):
    argv = unit_command(tmp_path, f"{hall_hub.url}/hall?lang=zh_CN&voice=zh")
    assert argv[0] == "/usr/bin/chromium"
    assert {"--kiosk", "--autoplay-policy=no-user-gesture-required"} <= set(argv)
    profile = next(Path(a.split("=", 1)[1]) for a in argv if a.startswith("--user-data-dir="))
    assert profile.parent.parent.parent == tmp_path  # %h/.local/share/onewindow-hall
    # The unit's own command line, headless and with a DevTools port for the test to look on.
    # Chromium opens the page itself: nothing here clicks, types or navigates.
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--remote-debugging-port=0", *argv[1:]]
    with open(tmp_path / "chromium.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline, (
                (tmp_path / "chromium.log").read_text()[-2000:])
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        browser = chromium.browser_type.connect_over_cdp(f"http://127.0.0.1:{port}")
        try:
            page = next(p for c in browser.contexts for p in c.pages if "/hall" in p.url)
            expect(page.locator("body")).to_have_attribute("data-sound", "on", timeout=15_000)
            expect(page.locator("#sound")).to_be_hidden()
            ticket = call(4)
            expect(page.locator("#now-number")).to_have_text(ticket)
            page.wait_for_function("window.__owVoice.length > 0", timeout=15_000)
            played = page.evaluate("window.__owVoice")
            call_id = page.evaluate("window.__owRenders")[0]["id"]
            assert [v["url"] for v in played] == [f"/hall/voice/{call_id}.wav?lang=zh"]
            expect(page.locator("body")).to_have_attribute("data-sound", "on")
        finally:
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def plain_chromium(chromium):
    """Chromium as a hall PC would start it without the kiosk unit: the default autoplay
    policy, which blocks sound until the page has had a click."""
    browser = chromium.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                           args=["--no-sandbox"])
    yield browser
    browser.close()


BLOCKED = {"zh_CN": "浏览器阻止了声音：点击此处开启语音播报",
           "zh_TW": "瀏覽器封鎖了聲音：點擊此處開啟語音播報",
           "en": "The browser has blocked the sound: click here to turn on the announcements"}


@pytest.mark.parametrize("lang", LANGS)
def test_sound_blocked_shows_a_red_bar_and_one_click_plays_what_waited(
        hall_hub, plain_chromium, lang):
    window = {"zh_CN": 6, "zh_TW": 7, "en": 9}[lang]
    ctx, page = open_hall(plain_chromium, hall_hub, (1280, 720), lang, voice="zh")
    try:
        expect(page.locator("body")).to_have_attribute("data-sound", "blocked")
        bar = page.locator("#sound")
        expect(bar).to_be_visible()
        expect(bar.locator("strong")).to_have_text(BLOCKED[lang])
        expect(bar.locator("small")).to_contain_text("kiosk")
        assert page.evaluate(MEASURE, READABLE_AT_5M)["bad"] == []
        box = bar.bounding_box()
        assert box and box["width"] == 1280 and box["y"] + box["height"] == 720
        shot(page, f"hall-sound-blocked-{lang}")
        # a call while blocked: shown, not spoken, and the bar stays
        ticket = call(window)
        expect(page.locator("#now-number")).to_have_text(ticket)
        page.wait_for_function("window.__owRenders.length === 1")
        assert page.evaluate("window.__owVoice") == []
        expect(bar).to_be_visible()
        bar.click()
        expect(page.locator("body")).to_have_attribute("data-sound", "on")
        expect(bar).to_be_hidden()
        page.wait_for_function("window.__owVoice.length === 1", timeout=15_000)
        call_id = page.evaluate("window.__owRenders")[0]["id"]
        assert page.evaluate("window.__owVoice")[0]["url"] == (
            f"/hall/voice/{call_id}.wav?lang=zh")
    finally:
        ctx.close()


def test_voice_off_shows_no_bar(hall_hub, plain_chromium):
    ctx, page = open_hall(plain_chromium, hall_hub, (1280, 720), "zh_CN", voice="off")
    try:
        expect(page.locator("body")).to_have_attribute("data-sound", "off")
        expect(page.locator("#sound")).to_be_hidden()
    finally:
        ctx.close()
