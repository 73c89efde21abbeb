"""Public pages: hall screen, kiosk, the resident's phone page. Read-only but for taking a
ticket at the kiosk; nothing personal on any of them."""

from __future__ import annotations

from starlette.routing import BaseRoute

from .site import Site


def routes(site: Site) -> list[BaseRoute]:
    return []
