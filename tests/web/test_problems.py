"""The one handler: each class of the project's error family answers with its status and a problem body."""

from __future__ import annotations

import errno

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc

from kalshi_analytics.errors import AppError, ConflictError, InvalidInputError, NotFoundError, UnavailableError
from kalshi_analytics.web.problems import RateLimitedError, inputs_from, install_error_handlers
from tests.fixtures.app import assert_problem


async def answer(error: Exception) -> httpx.Response:
    app = FastAPI()
    install_error_handlers(app)

    async def fail() -> None:
        raise error

    app.add_api_route("/x", fail)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/x")


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (NotFoundError("no backtest 7"), 404, "not-found"),
        (ConflictError("already running"), 409, "conflict"),
        (UnavailableError("database down"), 503, "unavailable"),
        (InvalidInputError("too long"), 422, "validation-error"),
    ],
)
async def test_each_class_has_its_status(error: AppError, status: int, slug: str) -> None:
    body = assert_problem(await answer(error), status)
    assert body["detail"] == str(error)
    assert body["type"].endswith("/" + slug)
    assert "errors" not in body


async def test_invalid_input_names_its_fields() -> None:
    body = assert_problem(await answer(InvalidInputError("not a cursor", field="query.cursor")), 422)
    assert body["detail"] == "invalid request: query.cursor: not a cursor"
    assert body["errors"] == [{"field": "query.cursor", "message": "not a cursor"}]
    several = InvalidInputError("s: a: bad; b: worse", field="body.params", errors=[("body.a", "bad"), ("body.b", "x")])
    body = assert_problem(await answer(several), 422)
    assert body["detail"] == "invalid request: body.a, body.b"
    assert [e["field"] for e in body["errors"]] == ["body.a", "body.b"]


async def test_rate_limited_says_when_to_retry() -> None:
    r = await answer(RateLimitedError("slow down", retry_after=7))
    assert assert_problem(r, 429)["detail"] == "slow down"
    assert r.headers["retry-after"] == "7"


async def test_unavailable_says_when_to_retry() -> None:
    r = await answer(UnavailableError("queue full", retry_after=9))
    assert assert_problem(r, 503)["detail"] == "queue full"
    assert r.headers["retry-after"] == "9"
    assert (await answer(UnavailableError("exchange away"))).headers["retry-after"] == "2"


async def _refused() -> Exception:
    try:
        await asyncpg.connect("postgresql://nobody@127.0.0.1:1/none", timeout=2)
    except OSError as exc:
        return exc
    raise AssertionError("port 1 answered")


@pytest.mark.parametrize(
    "error",
    [
        None,  # the driver's ConnectionRefusedError
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        sa_exc.OperationalError("SELECT 1", {}, asyncpg.ConnectionDoesNotExistError("closed")),
    ],
)
async def test_a_database_that_cannot_be_reached_is_a_503_with_retry_after(error: Exception | None) -> None:
    r = await answer(error or await _refused())
    body = assert_problem(r, 503)
    assert int(r.headers["retry-after"]) >= 1
    assert "database" in body["detail"]
    assert "Connection refused" not in r.text


async def test_other_driver_errors_are_a_generic_500_answered_in_the_app() -> None:
    r = await answer(asyncpg.DataError("value out of range: secret"))
    body = assert_problem(r, 500)
    assert "secret" not in r.text
    assert "incident" in body["detail"]
    assert_problem(await answer(FileNotFoundError(errno.ENOENT, "not the database")), 500)


async def test_an_error_not_meant_for_http_clients_is_a_generic_500() -> None:
    class ExchangeError(AppError):
        pass

    r = await answer(ExchangeError("exchange said: key abc123 rejected"))
    body = assert_problem(r, 500)
    assert "abc123" not in r.text
    assert "incident" in body["detail"]


def test_inputs_from_names_the_location_on_a_copy() -> None:
    shared = InvalidInputError("corrupt cursor", field="cursor", errors=[("cursor", "corrupt cursor")])
    for _ in range(2):  # one build's error reaches every request waiting for it
        with pytest.raises(InvalidInputError) as info, inputs_from("query"):
            raise shared
        assert (info.value.field, info.value.errors) == ("query.cursor", [("query.cursor", "corrupt cursor")])
    assert (shared.field, shared.errors) == ("cursor", [("cursor", "corrupt cursor")])
