"""Telling an unreachable database from other failures, and the gate that refuses requests meanwhile."""

from __future__ import annotations

import asyncio
import errno

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
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


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        ConnectionResetError(),
        FileNotFoundError(errno.ENOENT, "No such file or directory"),  # a Unix socket that is gone
        OSError(errno.EHOSTUNREACH, "No route to host"),
        TimeoutError(),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
        _wrapped(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")),
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
        PermissionError(errno.EACCES, "Permission denied"),
    ],
)
def test_other_failures_are_not_outages(error: BaseException) -> None:
    assert unreachable(error) is None


def test_busy_is_unavailable_but_not_an_outage() -> None:
    assert not is_outage(unreachable(sa_exc.TimeoutError("pool")) or "")
    assert not is_outage(unreachable(asyncpg.TooManyConnectionsError("too many")) or "")
    assert is_outage(unreachable(ConnectionRefusedError()) or "")


async def test_gate_opens_once_refuses_at_once_and_closes_when_the_probe_connects(database_url: str) -> None:
    gate = DatabaseGate(libpq_url(database_url), retry_after=3, probe_seconds=0.05)
    try:
        gate.check()  # closed: nothing refused
        assert gate.failed(ValueError("a bug")) is None
        assert not gate.down
        with capture_logs() as logs:
            for _ in range(50):
                err = gate.failed(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
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
