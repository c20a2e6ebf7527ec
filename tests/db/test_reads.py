"""The read path's parameter numbering, and one query through it on a real server."""

from __future__ import annotations

import asyncpg

from kalshi_analytics.db.engine import libpq_url
from kalshi_analytics.db.reads import Reads, positional


def test_names_become_numbers_once_each_and_casts_and_formats_stay_text() -> None:
    sql = "SELECT :a::text, to_char(now(), 'HH24:MI:SS'), :b, :a WHERE x = ANY(:ids)"
    statement, names = positional(sql)
    assert statement == "SELECT $1::text, to_char(now(), 'HH24:MI:SS'), $2, $1 WHERE x = ANY($3)"
    assert names == ("a", "b", "ids")


async def test_a_query_runs_with_named_parameters(database_url: str) -> None:
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        row = await Reads(conn).one("SELECT :n::int + :n::int AS twice, :s::text AS s", {"n": 21, "s": "a:b"})
    finally:
        await conn.close()
    assert (row["twice"], row["s"]) == (42, "a:b")
