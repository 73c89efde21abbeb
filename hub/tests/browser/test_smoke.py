"""The browser harness itself: Chromium loads a hub page, refuses a post without the CSRF
token, and live updates arrive over SSE (Chromium's own EventSource on the hub's stream)."""

from __future__ import annotations

import pytest

from .test_staff_pages import Device

pytestmark = pytest.mark.timeout(60)

# A bare EventSource (not the pages' ow.live): every `hall` event it gets, parsed, in order.
LISTEN = """url => new Promise((opened, failed) => {
  window.__events = [];
  const es = new EventSource(url);
  es.addEventListener("hall", (e) => window.__events.push(JSON.parse(e.data)));
  es.onopen = () => opened(es.readyState);
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) failed("closed"); };
  window.__es = es;
})"""


def test_chromium_gets_the_csrf_cookie_and_refuses_a_post_without_it(web_hub, browser_context):
    page = browser_context.new_page()
    r = page.goto(web_hub.url + "/static/ow.css")
    assert r is not None and r.ok
    api = browser_context.request
    refused = api.post(web_hub.url + "/anything", data="{}",
                       headers={"Content-Type": "application/json"})
    assert refused.status == 403 and refused.json()["code"] == "csrf"


def test_live_updates_arrive_over_sse_in_chromium(web_hub, browser_context):
    page = browser_context.new_page()
    page.goto(web_hub.url + "/static/ow.css")  # any page of the hub's origin
    assert page.evaluate(LISTEN, "/live/hall") == 1  # EventSource.OPEN
    # the first event is the current snapshot: nobody called yet
    page.wait_for_function("window.__events.length >= 1", timeout=10_000)
    first = page.evaluate("window.__events[0]")
    assert first["calls"] == []

    box = Device(web_hub.broker_port, "box-1", "box")
    keypad = Device(web_hub.broker_port, "kp-2", "keypad", 2)
    assert box.send(("take", {"item": "SOC-001"}))[0]["ticket"] == "A001"
    keypad.send(("open", {}), ("call", {}))
    # the call arrives as a later event on the same stream, no reload, no polling by the page
    page.wait_for_function(
        "window.__events.some(e => e.calls.length && e.calls[0].ticket === 'A001')",
        timeout=10_000)
    events = page.evaluate("window.__events")
    call = next(e for e in events if e["calls"])["calls"][0]
    assert (call["ticket"], call["window"]) == ("A001", 2)
    assert call["zh"] == "请A001号到2号窗口办理业务"
    assert page.evaluate("window.__es.readyState") == 1  # still the one open stream
    page.evaluate("window.__es.close()")


# The pages' own ow.live on the hall's feed, and the raw events under it: every state a
# handler is given, and how many deltas ("patch" events) came.
FOLLOW = """() => new Promise((opened) => {
  window.__states = [];
  window.__patches = 0;
  const es = ow.live("hall", "", (s) => window.__states.push(s));
  es.addEventListener("patch", () => window.__patches++);
  window.__es0 = es;
  es.onopen = () => opened(es.readyState);
})"""
# A fresh bare stream's first event: the hub's whole state now.
WHOLE = """() => new Promise((got) => {
  const es = new EventSource("/live/hall");
  es.addEventListener("hall", (e) => { es.close(); got(JSON.parse(e.data)); });
})"""


def test_chromium_applies_live_deltas_to_the_state_it_was_sent_whole(web_hub, browser_context):
    page = browser_context.new_page()
    page.goto(web_hub.url + "/static/ow.css")
    page.add_script_tag(url="/static/ow.js")
    assert page.evaluate(FOLLOW) == 1
    page.wait_for_function("window.__states.length >= 1", timeout=10_000)
    box = Device(web_hub.broker_port, "box-1", "box")
    keypads = [Device(web_hub.broker_port, f"kp-{n}", "keypad", n) for n in (1, 2, 3, 4)]
    box.send(*[("take", {"item": "SOC-001"})] * 12)
    for kp in keypads:
        kp.send(("open", {}), ("call", {}))

    def last_call_is(number: str) -> None:
        page.wait_for_function(
            f"(() => {{ const s = window.__states.at(-1);"
            f" return s.calls.length && s.calls[0].ticket === '{number}'; }})()",
            timeout=10_000)

    last_call_is("A004")
    for n, kp in zip(range(5, 9), keypads, strict=True):  # one change after another
        kp.send(("call", {}))
        last_call_is(f"A{n:03d}")
    # the hall grew past the size sent whole every time: later changes came as deltas, and
    # the state they left is the hub's whole state
    assert page.evaluate("window.__patches") >= 1
    assert page.evaluate("window.__states.at(-1)") == page.evaluate(WHOLE)
    # a delta that does not follow the page's last frame (as if it had missed one): the
    # page opens its stream again and is sent the whole state, not a wrong one
    page.evaluate("ow._feeds.get('/live/hall').id = 'missed'")
    for kp in keypads[:2]:
        kp.send(("call", {}))
    page.wait_for_function(
        "(() => { const s = window.__states.at(-1);"
        " return s.calls.length && s.calls[0].ticket === 'A010'; })()", timeout=10_000)
    assert page.evaluate("window.__es0.readyState") == 2  # the first stream, closed
    assert page.evaluate("ow._feeds.get('/live/hall').es.readyState") == 1  # a new one
    assert page.evaluate("window.__states.at(-1)") == page.evaluate(WHOLE)
