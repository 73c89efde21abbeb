"""`Rejected`: how the core refuses an operation.

Every operation either raises it having changed nothing, or changes the state and returns
its effects. The app answers the device with `code` (stable, machine-readable; the
protocol's README lists them) and `message` (zh-CN first, then English).
"""

from __future__ import annotations

from typing import Any


class Rejected(Exception):
    """An operation the core refuses. `code` is stable and machine-readable."""

    def __init__(self, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
