"""Browser tests: the hub's pages in real headless Chromium (Debian's `chromium`, driven by
Playwright's Python package through `executable_path`), against a real hub process with a
private Mosquitto. Screenshots go to `artifacts/screenshots/` (CI keeps that folder)."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from onewindow.hub.store.accounts import Accounts
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.testbed import (
    HubProcess,
    Mosquitto,
    default_devices,
    offset_for_local,
    write_config,
)

REPO = Path(__file__).resolve().parents[3]
SHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CENTRE = "web"


@dataclass
class WebHub:
    url: str  # http://127.0.0.1:PORT
    broker_port: int
    workdir: Path
    hub: HubProcess
    config: Path
    tz: dt.timezone = dt.timezone(dt.timedelta(hours=8))  # the centre's local time

    def restart(self) -> None:
        self.hub.stop()
        self.hub.start()
        _wait_http(self.url, hub=self.hub)


def _wait_http(url: str, timeout: float = 60.0, hub: HubProcess | None = None) -> None:
    """Until the hub's web listens at `url`. A hub that exited meanwhile fails at once with
    its log's tail (all the browser tests of a loaded run once waited out their timeouts
    on one that had not come up, saying only that nothing listened). Generous: a passing
    run waits about a second."""
    host, port = url.removeprefix("http://").split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, int(port))) == 0:
                return
        if hub is not None and hub.proc is not None and hub.proc.poll() is not None:
            raise RuntimeError(f"the hub exited ({hub.proc.returncode}) before its web "
                               f"listened at {url}:\n{hub.log.read_text()[-3000:]}")
        time.sleep(0.05)
    tail = hub.log.read_text()[-3000:] if hub is not None else ""
    raise TimeoutError(f"hub web did not listen at {url} in {timeout:.0f} s\n{tail}")


@pytest.fixture
def web_hub(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[WebHub]:
    """A hub process with [web] on a free port: 4 comprehensive windows, keypads and LED
    boards at each, box-1, and a kiosk node `kiosk-1`. Tests may parametrize extra TOML via
    `@pytest.mark.hub_extra("...")` (appended to the centre's config), and the centre's
    local time at start via `@pytest.mark.hub_local_time("HH:MM")` (its UTC offset chosen
    so: hours then cannot end, or end when the test wants, whatever the wall clock says)."""
    marker = request.node.get_closest_marker("hub_extra")
    extra = marker.args[0] if marker else ""
    local = request.node.get_closest_marker("hub_local_time")
    offset = offset_for_local(local.args[0]) if local else None
    tz = dt.timezone(dt.timedelta(minutes=480 if offset is None else offset))
    port = quiet_port()
    with Mosquitto(tmp_path / "broker") as broker:
        devices = [*default_devices(4), {"id": "kiosk-1", "role": "kiosk"}]
        cfg = write_config(tmp_path / "centre.toml", CENTRE, broker.port, tmp_path / "hub.db",
                           windows=4, devices=devices,
                           extra=f"\n[web]\nport = {port}\n{extra}\n",
                           utc_offset_minutes=offset)
        hub = HubProcess(cfg, tmp_path / "hub.log").start()
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_http(url, hub=hub)
            yield WebHub(url, broker.port, tmp_path, hub, cfg, tz)
        finally:
            hub.stop()


@pytest.fixture(scope="package")
def chromium():
    """One headless Chromium for the browser tests (pages are isolated by browser contexts).
    Package scope: Playwright's sync API holds an event loop in the main thread until it
    stops, and the asyncio tests that run after this package need that thread free."""
    assert os.path.exists(CHROMIUM), "chromium is not installed: apt-get install chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # launch timeout 120 s, not Playwright's 30: a heavily loaded machine is slow
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, timeout=120_000,
                                    args=["--no-sandbox", "--autoplay-policy="
                                          "no-user-gesture-required"])
        yield browser
        browser.close()


@pytest.fixture
def browser_context(chromium):
    ctx = chromium.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    yield ctx
    ctx.close()


def add_staff(hub: WebHub, staff: list[tuple[str, str, str, int | None]],
              password: str) -> None:
    """Staff accounts (username, display name, role, window) added to the running hub's
    database, as `onewindow user add` would."""
    accounts = Accounts(f"sqlite:///{hub.workdir / 'hub.db'}",
                        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    try:
        for username, display, role, window in staff:
            accounts.add(username, password, role, display, window)
    finally:
        accounts.close()


def log_in(page, url: str, username: str, password: str, *, next_: str | None = "/console",
           window: int | None = None, lang: str = "zh_CN", lands: str | None = None) -> None:
    """Sign in through the login page as staff do (choosing a window when given), then wait
    until the page is where `lands` says (a URL pattern), or anywhere but the login page."""
    page.goto(f"{url}/login?lang={lang}" + (f"&next={next_}" if next_ else ""))
    page.fill("#username", username)
    page.fill("#password", password)
    if window is not None:
        page.select_option("#window", str(window))
    page.click("#login")
    page.wait_for_url(re.compile(lands) if lands else (lambda u: "/login" not in u))


def shot(page, name: str) -> Path:
    """Save a screenshot as a CI artifact: artifacts/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hub_extra(toml): extra centre TOML for web_hub")
    config.addinivalue_line("markers", "hub_local_time(hhmm): web_hub's local time at start")
