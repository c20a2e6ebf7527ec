"""Writing JSON answers: serialised once in pydantic-core, or spliced around an array PostgreSQL rendered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import Response
from pydantic import BaseModel

JSON = "application/json"


@dataclass(frozen=True)
class Gzipped:
    """A body built gzip-compressed (from stored compressed parts), with its strong ETag."""

    body: bytes
    etag: str


def model_json(model: BaseModel) -> tuple[bytes, str]:
    """Serialise once, in pydantic-core (the route's ``response_model`` still documents the shape).

    Long lists (markets, raw history, candles) skip pydantic altogether: PostgreSQL renders them as JSON
    (:func:`spliced_json`), because validating 1,440 candles in Python cost ~70 ms a request.
    """
    return model.__pydantic_serializer__.to_json(model), JSON


def model_response(model: BaseModel) -> Response:
    body, media_type = model_json(model)
    return Response(body, media_type=media_type)


def spliced_json(head: dict[str, Any], key: str, array_json: str) -> tuple[bytes, str]:
    """``head`` plus ``key``: a JSON array already rendered by PostgreSQL."""
    body = json.dumps(head, separators=(",", ":"))[:-1] + f',"{key}":' + array_json + "}"
    return body.encode(), JSON
