"""The browser harness itself: Chromium loads a hub page, live updates arrive over SSE."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(60)


def test_chromium_gets_the_csrf_cookie_and_refuses_a_post_without_it(web_hub, browser_context):
    page = browser_context.new_page()
    r = page.goto(web_hub.url + "/static/ow.css")
    assert r is not None and r.ok
    api = browser_context.request
    refused = api.post(web_hub.url + "/anything", data="{}",
                       headers={"Content-Type": "application/json"})
    assert refused.status == 403 and refused.json()["code"] == "csrf"
