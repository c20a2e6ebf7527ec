"""The API key: never in a log line at any level, and checked at start-up (one line, exit 1, before the lock)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from kalshi_analytics.config import load_settings
from kalshi_analytics.db.engine import libpq_url
from kalshi_analytics.kalshi import domain
from kalshi_analytics.kalshi.credentials import KalshiCredentialsError, load_signer, verify_credentials
from kalshi_analytics.kalshi.rest import KalshiRestClient
from kalshi_analytics.kalshi.signing import KalshiSigner
from kalshi_analytics.kalshi.ws import KalshiWsClient
from kalshi_analytics.logs import configure_logging
from kalshi_analytics.recorder.leader import DEFAULT_LOCK_KEY
from kalshi_analytics.simulator import Simulator, SimulatorConfig, run_simulator
from kalshi_analytics.simulator.auth import DemoKey, generate_demo_key
from kalshi_analytics.stack import simulator_for
from tests.conftest import free_port


@pytest.fixture(scope="module")
def demo_key() -> DemoKey:
    return generate_demo_key()


@pytest.fixture
def key_file(tmp_path: Path, demo_key: DemoKey) -> Path:
    path = tmp_path / "kalshi.pem"
    path.write_text(demo_key.private_pem)
    return path


@pytest.fixture
async def auth_sim(demo_key: DemoKey) -> AsyncIterator[Simulator]:
    """A simulator that demands signatures and knows the demo key (like `simulate --require-auth --public-key`)."""
    cfg = SimulatorConfig(
        seed=5, markets=5, speed=60, port=0, require_auth=True, public_keys={demo_key.key_id: demo_key.public_pem}
    )
    async with run_simulator(cfg) as sim:
        yield sim


class Collect(logging.Handler):
    """Any handler a user or a library might add: it formats records itself, with no masking of its own."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs() -> Iterator[Collect]:
    root = logging.getLogger()
    handlers, level, factory = root.handlers[:], root.level, logging.getLogRecordFactory()
    configure_logging("DEBUG", "kv")
    collect = Collect()
    root.addHandler(collect)
    yield collect
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.setLogRecordFactory(factory)


async def test_debug_logs_of_signed_connects_hold_no_signature_key_id_or_pem(
    auth_sim: Simulator,
    demo_key: DemoKey,
    key_file: Path,
    debug_logs: Collect,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signatures: list[str] = []
    real_sign = KalshiSigner.sign

    def sign(self: KalshiSigner, message: bytes) -> str:
        signatures.append(real_sign(self, message))
        return signatures[-1]

    monkeypatch.setattr(KalshiSigner, "sign", sign)
    settings = load_settings(
        kalshi_api_base=auth_sim.base_url,
        kalshi_ws_url=auth_sim.ws_url,
        kalshi_api_key_id=demo_key.key_id,
        kalshi_private_key_path=key_file,
    )
    async with KalshiRestClient.from_settings(settings) as rest:
        assert await verify_credentials(rest)
        assert (await rest.get_markets(limit=2)).items
    async with KalshiWsClient.from_settings(settings) as ws:
        await ws.subscribe("ticker", send_initial_snapshot=True)
        async with asyncio.timeout(10):
            async for event in ws.events():
                if isinstance(event, domain.TickerUpdate):
                    break
    logging.getLogger("some.library").debug("loaded %s", demo_key.private_pem)  # a careless library

    text = "\n".join(debug_logs.lines) + capsys.readouterr().err
    assert len(signatures) >= 3, "REST and the WebSocket upgrade were signed"
    # The test sees what a leak would look like: the handshake as the simulator's WebSocket library logs it (the
    # headers it received), with the headers' values masked.
    assert "< GET /trade-api/ws/v2 HTTP/1.1" in text
    assert "kalshi-access-signature: ***" in text
    assert "kalshi-access-key: ***" in text
    for signature in signatures:
        assert signature not in text
    assert demo_key.key_id not in text
    assert "PRIVATE KEY" not in text
    for pem_line in demo_key.private_pem.splitlines()[1:-1]:
        assert pem_line not in text


def test_key_problems_are_one_line_errors_naming_the_variable(
    tmp_path: Path, demo_key: DemoKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("KALSHI_API_KEY_ID", "KALSHI_PRIVATE_KEY_PATH"):
        monkeypatch.delenv(var, raising=False)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN RSA PRIVATE KEY-----\nnot base64 at all\n-----END RSA PRIVATE KEY-----\n")
    cases = {
        "is not an unencrypted PEM private key": {"kalshi_private_key_path": garbage},
        "set both or neither": {"kalshi_private_key_path": garbage, "kalshi_api_key_id": None},
    }
    for expected, overrides in cases.items():
        settings = load_settings(**{"kalshi_api_key_id": demo_key.key_id, **overrides})
        with pytest.raises(KalshiCredentialsError) as exc:
            load_signer(settings)
        message = str(exc.value)
        assert expected in message
        assert "\n" not in message
        assert demo_key.key_id not in message
    assert load_signer(load_settings()) is None


async def test_an_unknown_key_id_is_refused_by_the_exchange(auth_sim: Simulator, key_file: Path) -> None:
    settings = load_settings(
        kalshi_api_base=auth_sim.base_url, kalshi_api_key_id="not-a-known-key-id", kalshi_private_key_path=key_file
    )
    async with KalshiRestClient.from_settings(settings) as rest:
        with pytest.raises(KalshiCredentialsError, match=r"refused the API key \(HTTP 401 unauthorized: unknown API"):
            await verify_credentials(rest)


# ------------------------------------------------------------------------ the recorder, as a standby would start


async def run_recorder(env: dict[str, str], seconds: float) -> tuple[int, str, float]:
    """``kalshi-analytics recorder --duration`` in a subprocess; (exit code, stderr, seconds it took)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DB_URL", "KALSHI_", "LOG_"))}
    full.update(env)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "kalshi_analytics", "recorder", "--metrics-port", "0", "--duration", str(seconds)),
        env=full,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), seconds + 60)
    return proc.returncode or 0, err.decode(), time.monotonic() - started


@pytest.fixture
async def leader_held(fresh_database_url: str) -> AsyncIterator[str]:
    """A database whose recorder lock another (healthy) leader holds: whoever starts now is a standby."""
    conn = await asyncpg.connect(libpq_url(fresh_database_url))
    try:
        assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", DEFAULT_LOCK_KEY)
        yield fresh_database_url
    finally:
        await conn.close()


@pytest.mark.parametrize("problem", ["malformed_pem", "unknown_key_id"])
async def test_a_standby_with_a_bad_key_stops_at_start_with_one_line(
    problem: str, auth_sim: Simulator, demo_key: DemoKey, key_file: Path, leader_held: str, tmp_path: Path
) -> None:
    key_id, expected = demo_key.key_id, "refused the API key (HTTP 401"
    if problem == "malformed_pem":
        bad = tmp_path / "cut.pem"
        await asyncio.to_thread(bad.write_text, demo_key.private_pem[:200])  # as a bad copy-paste leaves it
        key_file, expected = bad, "is not an unencrypted PEM private key"
    else:
        key_id = "0b5e7c1a-unknown-to-the-exchange"
    env = {
        "DB_URL": leader_held,
        "KALSHI_API_BASE": auth_sim.base_url,
        "KALSHI_WS_URL": auth_sim.ws_url,
        "KALSHI_API_KEY_ID": key_id,
        "KALSHI_PRIVATE_KEY_PATH": str(key_file),
        "KALSHI_ANALYTICS_DATA_DIR": str(tmp_path),
    }
    code, err, seconds = await run_recorder(env, seconds=30)
    assert code == 1, err
    assert seconds < 25, "it failed at start, not after waiting its turn as a standby"
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert expected in errors[0]
    assert "KALSHI_PRIVATE_KEY_PATH" in errors[0]
    assert "Traceback" not in err
    assert key_id not in err


async def test_ups_simulator_accepts_the_configured_key(key_file: Path, demo_key: DemoKey) -> None:
    settings = load_settings(
        kalshi_env="sim",
        sim_port=free_port(),
        sim_markets=3,
        kalshi_api_key_id=demo_key.key_id,
        kalshi_private_key_path=key_file,
    )
    async with simulator_for(settings) as sim:
        assert sim is not None
        async with KalshiRestClient.from_settings(settings) as rest:
            assert await verify_credentials(rest), "the signed private request was accepted"
