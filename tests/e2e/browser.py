"""What every browser test watches on its pages: console errors and failed requests."""

from __future__ import annotations

from typing import Any


class Watch:
    """Console errors and failed requests of a page (a stream closed by navigating away is not a failure)."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.failed: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on(
            "requestfailed",
            lambda r: None if "/api/v1/stream" in r.url else self.failed.append(f"{r.method} {r.url}: {r.failure}"),
        )
