"""Request bodies read as JSON is written: ``NaN``, ``Infinity`` and ``-Infinity`` are refused.

JSON has no such numbers (RFC 8259 §6), but Python's parser reads them, and a value nobody can store or compare
then travels into a model, a strategy and the database. A router built with ``route_class=StrictJsonRoute``
answers 422 naming where in the body the number is (``body.params.size``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


class NonFiniteNumberError(json.JSONDecodeError):
    """A NaN or an infinity in a body; a ``JSONDecodeError``, so FastAPI's body reader treats it as bad JSON."""

    def __init__(self, path: tuple[str | int, ...], value: float, doc: str) -> None:
        super().__init__("NaN and Infinity are not JSON numbers", doc, 0)
        self.path = path
        self.value = value


def non_finite_path(value: Any) -> tuple[tuple[str | int, ...], float] | None:
    """Where in a parsed JSON value the first NaN or infinity is, and that number (iterative: bodies may nest)."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return path, v
        if isinstance(v, dict):
            stack.extend(((*path, str(k)), item) for k, item in reversed(v.items()))
        elif isinstance(v, list):
            stack.extend(((*path, i), item) for i, item in reversed(list(enumerate(v))))
    return None


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            value = json.loads(body)
            found = non_finite_path(value)
            if found is not None:
                raise NonFiniteNumberError(found[0], found[1], body.decode(errors="replace"))
            self._json = value
        return self._json


class StrictJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            try:
                return await handler(StrictJsonRequest(request.scope, request.receive))
            except RequestValidationError as exc:
                cause = exc.__cause__
                if not isinstance(cause, NonFiniteNumberError):
                    raise
                error = {
                    "type": "finite_number",
                    "loc": ("body", *cause.path),
                    "msg": f"{cause.value} is not a JSON number: NaN and Infinity are not allowed",
                    "input": str(cause.value),
                }
                raise RequestValidationError([error], body=None) from None

        return strict
