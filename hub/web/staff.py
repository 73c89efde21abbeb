"""Staff pages behind a login: clerk console, back-office specialist, supervisor dashboard."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from .site import Site


def routes(site: Site) -> list[BaseRoute]:
    return []


def middleware(site: Site) -> list[Middleware]:
    return []
