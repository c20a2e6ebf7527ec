"""Test databases: a real PostgreSQL, never a mock.

By default an embedded server (pgserver) in a temporary directory; with TEST_DATABASE_URL set, that server.
Each session creates its own database, runs the real migrations on it once, and every test runs inside an
outer transaction that is rolled back, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from kalshi_analytics.db import migrations
from kalshi_analytics.db.embedded import start_embedded, stop_embedded
from kalshi_analytics.db.engine import create_engine

#: The app fixtures (``app_factory``, ``client``, …) serve every folder, not only one conftest's subtree.
pytest_plugins = ["tests.fixtures.app"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "kalshi"
#: Set (by .ci/run) where the shared data must be present: a test that needs it then fails instead of skipping.
REQUIRE_SHARED_DATA = "KA_REQUIRE_SHARED_DATA"


def require_shared_data(path: Path = SHARED_DATA) -> Path:
    """``path`` (the shared data or a folder of it) for a test that reads it.

    Missing, the test is skipped on a developer's machine, but fails when ``KA_REQUIRE_SHARED_DATA`` is set
    (CI): a suite that silently skips the tests of the real data must not pass there.
    """
    if not path.is_dir():
        message = f"shared Kalshi data not checked out next to the repository (expected {path})"
        if os.environ.get(REQUIRE_SHARED_DATA, "") not in ("", "0"):
            pytest.fail(f"{message}; {REQUIRE_SHARED_DATA} is set, so this is an error", pytrace=False)
        pytest.skip(message)
    return path


def free_port() -> int:
    """A free TCP port on the loopback address, for servers a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, *, seconds: float = 10.0, interval: float = 0.02
) -> None:
    """Poll ``condition`` (plain or async) until it holds; fail the test naming ``what`` after ``seconds``.

    For tests that wait on something with no event to await: instead of a fixed sleep that is too short on a
    busy machine and too long on an idle one.
    """
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(interval)


def make_pg_dir() -> Path:
    """A directory the embedded server may live in.

    Not pytest's tmp_path: as root, pgserver runs PostgreSQL as its own user, which cannot enter pytest's
    private (0700) temporary tree.
    """
    path = Path(tempfile.mkdtemp(prefix="ka-test-pg-"))
    path.chmod(0o755)
    return path


@pytest.fixture
async def own_server() -> AsyncIterator[tuple[Path, str]]:
    """A private embedded PostgreSQL this test may stop and start (pgdata, database URL), migrated."""
    root = make_pg_dir()
    pgdata = root / "pgdata"
    emb = await asyncio.to_thread(start_embedded, pgdata, "kalshi")
    engine = create_engine(emb.url, pool_size=1)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()
    try:
        yield pgdata, emb.url
    finally:
        await asyncio.to_thread(stop_embedded, pgdata)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    path = make_pg_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded_server_url() -> Iterator[str]:
    """An embedded PostgreSQL for this session (admin URL to its ``postgres`` database)."""
    root = make_pg_dir()
    pgdata = root / "pgdata"
    emb = start_embedded(pgdata, database="postgres")
    yield emb.url
    stop_embedded(pgdata)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def server_url(request: pytest.FixtureRequest) -> str:
    """The server the suite runs on: TEST_DATABASE_URL when set, else the embedded one."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return str(request.getfixturevalue("embedded_server_url"))


@pytest.fixture(scope="session")
def all_server_urls(request: pytest.FixtureRequest, server_url: str) -> list[str]:
    """Every server to check portability on: the embedded one, plus TEST_DATABASE_URL when given."""
    urls = [str(request.getfixturevalue("embedded_server_url"))]
    if server_url not in urls:
        urls.append(server_url)
    return urls


async def _admin(server: str, statement: str) -> None:
    admin = create_engine(server, pool_size=1)
    try:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


async def create_database(server: str) -> str:
    """Create an empty, uniquely named database on ``server`` and return its URL."""
    name = f"ka_test_{uuid.uuid4().hex[:12]}"
    await _admin(server, f'CREATE DATABASE "{name}"')
    return make_url(server).set(database=name).render_as_string(hide_password=False)


async def create_migrated_database(server: str) -> str:
    """A new database on ``server`` with the real migrations applied to head."""
    url = await create_database(server)
    engine = create_engine(url, pool_size=1)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()
    return url


async def drop_database(server: str, url: str) -> None:
    await _admin(server, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@pytest.fixture
async def fresh_database_url(server_url: str) -> AsyncIterator[str]:
    """An empty database (no migrations) for tests of the migrations themselves."""
    url = await create_database(server_url)
    yield url
    await drop_database(server_url, url)


@pytest.fixture
async def own_db(server_url: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A migrated database of the test's own, with an engine (for tests where processes commit into it, or that
    refuse connections to it)."""
    url = await create_migrated_database(server_url)
    eng = create_engine(url)
    try:
        yield url, eng
    finally:
        await eng.dispose()
        await drop_database(server_url, url)


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """This session's database, migrated to head once with the real migrations."""
    url = await create_migrated_database(server_url)
    yield url
    await drop_database(server_url, url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def conn(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside an outer transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        outer = await connection.begin()
        try:
            yield connection
        finally:
            await outer.rollback()


@pytest.fixture
async def session(conn: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """An ORM session on the rolled-back connection; its commits become savepoints."""
    async with AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False) as s:
        yield s


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests that configure logging: the root logger's handlers and level as they were, afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
