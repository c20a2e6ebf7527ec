"""Telling an unreachable database from other failures, and the gate that refuses requests meanwhile."""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import make_url
from structlog.testing import capture_logs

from kalshi_analytics.db.engine import DatabaseUnavailableError, libpq_url
from kalshi_analytics.db.outage import DatabaseGate, is_outage, unreachable
from tests.conftest import wait_until


def _wrapped(inner: BaseException) -> sa_exc.DBAPIError:
    """What SQLAlchemy raises around a driver error (``orig``), as its asyncpg dialect does."""
    return sa_exc.OperationalError("SELECT 1", {}, inner)


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


async def _connect_error(dsn: str, **kw: Any) -> BaseException:
    try:
        await asyncpg.connect(dsn, **kw)
    except BaseException as exc:
        return exc
    raise AssertionError(f"{dsn} answered")


@pytest.mark.parametrize(
    ("dsn", "kind"),
    [
        ("postgresql://nobody@127.0.0.1:1/none", ConnectionRefusedError),
        ("postgresql://nobody@/none?host=/nonexistent-socket-dir", FileNotFoundError),  # a server that is gone
    ],
)
async def test_connection_errors_of_the_driver_mean_unreachable(dsn: str, kind: type[OSError]) -> None:
    error = await _connect_error(dsn, timeout=2)
    assert isinstance(error, kind)
    assert unreachable(error) == kind.__name__
    assert unreachable(_wrapped(error)) == kind.__name__


@pytest.mark.parametrize(
    ("database", "kind"),
    [
        ("template0", asyncpg.ObjectNotInPrerequisiteStateError),  # "not currently accepting connections"
        ("ka_no_such_database", asyncpg.InvalidCatalogNameError),  # dropped under a running API
    ],
)
async def test_a_server_refusing_the_connection_means_unreachable(
    server_url: str, database: str, kind: type[BaseException]
) -> None:
    """Refused at connection set-up, a request cannot be served (503), whatever the SQLSTATE; the same class
    raised by a query is the query's business."""
    dsn = libpq_url(make_url(server_url).set(database=database))
    error = await _connect_error(dsn, timeout=5)
    assert isinstance(error, kind)
    assert unreachable(error) == kind.__name__
    assert unreachable(_wrapped(error)) == kind.__name__
    assert unreachable(kind("raised by a query")) is None


def test_the_same_os_errors_from_elsewhere_are_not_outages() -> None:
    with pytest.raises(FileNotFoundError) as missing:
        open("/nonexistent-file-of-kalshi-analytics")  # noqa: SIM115
    assert unreachable(missing.value) is None
    assert unreachable(ConnectionRefusedError(errno.ECONNREFUSED, "not raised by the driver")) is None


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
        sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
        sa_exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
        _chained(RuntimeError("while reading"), asyncpg.ConnectionFailureError("lost")),
        DatabaseUnavailableError("cannot connect"),
    ],
)
def test_connection_failures_mean_unreachable(error: BaseException) -> None:
    assert unreachable(error) is not None


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad cursor"),
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.DataError("invalid input"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        _wrapped(asyncpg.DataError("invalid input")),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
)
def test_other_failures_are_not_outages(error: BaseException) -> None:
    assert unreachable(error) is None


def test_busy_is_unavailable_but_not_an_outage() -> None:
    assert not is_outage(unreachable(sa_exc.TimeoutError("pool")) or "")
    assert not is_outage(unreachable(asyncpg.TooManyConnectionsError("too many")) or "")
    assert is_outage(unreachable(asyncpg.ConnectionDoesNotExistError("closed")) or "")


async def test_gate_opens_once_refuses_at_once_and_closes_when_the_probe_connects(database_url: str) -> None:
    gate = DatabaseGate(libpq_url(database_url), retry_after=3, probe_seconds=0.05)
    try:
        gate.check()  # closed: nothing refused
        assert gate.failed(ValueError("a bug")) is None
        assert not gate.down
        with capture_logs() as logs:
            refused = await _connect_error("postgresql://nobody@127.0.0.1:1/none", timeout=2)
            for _ in range(50):
                err = gate.failed(refused)
                assert isinstance(err, DatabaseUnavailableError)
                assert err.retry_after == 3
            assert gate.outages == 1
            with pytest.raises(DatabaseUnavailableError):
                gate.check()
            # The database is in fact there: the probe finds it and closes the gate.
            await wait_until(lambda: not gate.down, "the probe to find the database", seconds=5)
            gate.check()
        assert [e["event"] for e in logs] == ["database_unreachable", "database_reachable"]
    finally:
        await gate.close()


async def test_busy_failures_answer_503_without_opening_the_gate() -> None:
    gate = DatabaseGate("postgresql://nobody@127.0.0.1:1/none", retry_after=1)
    try:
        assert gate.failed(sa_exc.TimeoutError("QueuePool limit reached")) is not None
        assert not gate.down
        await asyncio.sleep(0)
    finally:
        await gate.close()
