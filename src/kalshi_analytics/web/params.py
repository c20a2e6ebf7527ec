"""Query parameters the features share: text PostgreSQL can store, a page's size and cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

# PostgreSQL text cannot hold NUL: refuse it at the edge (422) instead of failing in the driver (500).
NO_NUL = r"^[^\x00]*$"

Limit = Annotated[int, Query(ge=1, le=1000, description="page size (at most 1000)")]
Cursor = Annotated[str | None, Query(max_length=2000, pattern=NO_NUL, description="`next_cursor` of the previous page")]
