"""The simulated exchange as a server: one uvicorn on one port serving REST, WebSocket and the admin API.

    async with run_simulator(SimulatorConfig(seed=7, markets=40, speed=60, port=0)) as sim:
        httpx.get(sim.base_url + "/markets")        # http://127.0.0.1:<port>/trade-api/v2
        websockets.connect(sim.ws_url)              # ws://127.0.0.1:<port>/trade-api/ws/v2
        sim.set_faults(ws_drop_fraction=0.1)

The simulated clock runs ``speed`` simulated seconds per real second from its origin, advancing the model in
small steps from a task in the current event loop; at ``speed=1`` without a fixed ``start_ts`` it is wall time.
When a WebSocket consumer falls behind (its queue above ``backpressure_frames``) the model waits for it instead
of piling up frames, so the stream is lossless unless a fault says otherwise. At speed 1 it then catches up:
events keep their true timestamps and are delivered late, as a congested exchange would; at other speeds the
simulated clock simply runs slower. Only ``pause()`` stops time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import WebSocketRoute

from kalshi_analytics.errors import ConflictError
from kalshi_analytics.logs import get_logger
from kalshi_analytics.simulator.auth import AuthError, KeyStore
from kalshi_analytics.simulator.cdn import RestCache
from kalshi_analytics.simulator.faults import Faults, MessageLog
from kalshi_analytics.simulator.model import Market, MarketModel
from kalshi_analytics.simulator.params import error_response
from kalshi_analytics.simulator.rest import API, routes
from kalshi_analytics.simulator.ws import PROTOCOL_EXTENSION, WS_PATH, Hub, WebSocketEndpoint
from kalshi_analytics.web.server import EmbeddedServer

log = get_logger(__name__)

TOO_MANY = b'{"error":"too many requests"}'


@dataclass
class SimulatorConfig:
    host: str = "127.0.0.1"
    port: int = 8765  # 0 = any free port (read it back from Simulator.port)
    seed: int = 1
    markets: int = 50  # markets kept open (listed / trading); a tenth as many settled ones as history
    speed: float = 1.0  # simulated seconds per real second
    activity: float = 1.0  # multiplier on every market's trade rate
    legacy_format: bool = False  # integer-cent era payloads (REST and WS), cent grid and whole contracts
    start_ts: float | None = None  # simulated start (Unix s); None = now, rounded down to the minute
    settlement_timer_seconds: tuple[int, int] = (60, 300)
    require_auth: bool = False  # demand signed requests (unsigned ones get 401)
    public_keys: dict[str, str | Path] = field(default_factory=dict)  # key id → PEM text or file
    rate_limit: float | None = 100.0  # REST requests per second per client (token bucket); None = off
    rate_burst: float | None = None  # bucket capacity; default 2 s of rate
    faults: Faults = field(default_factory=Faults)
    log_size: int = 2_000_000
    tick_interval: float = 0.01  # real seconds between clock steps
    max_events_per_step: int = 4_000
    backpressure_frames: int = 20_000
    ws_ping_interval: float | None = 10.0  # Kalshi pings every 10 s
    access_log: bool = False
    start_paused: bool = False  # the clock waits for Simulator.resume() (e.g. after subscribing)


class TokenBucket:
    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Simulator:
    """A running simulated exchange: model, hub, log, faults and the URLs to reach it."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.model = MarketModel(
            seed=config.seed,
            markets=config.markets,
            start_ts=config.start_ts,
            activity=config.activity,
            legacy=config.legacy_format,
            settlement_timer_seconds=config.settlement_timer_seconds,
        )
        self.hub = Hub(self.model, config.log_size, config.legacy_format)
        self.hub.faults = config.faults
        self.keys = KeyStore()
        for key_id, pem in config.public_keys.items():
            if isinstance(pem, Path):
                self.keys.add_file(key_id, pem)
            else:
                self.keys.add(key_id, pem)
        self.fault_rng = random.Random(config.seed ^ 0xFA17)  # noqa: S311 - reproducible faults
        self.buckets: dict[str, TokenBucket] = {}
        self.requests = 0
        self.injected: dict[str, int] = {
            "rate_limited": 0,
            "server_error": 0,
            "unauthorized": 0,
            "truncated": 0,
            "ws_raw_frames": 0,
        }
        self.paused = config.start_paused
        self.cdn = RestCache(clock=lambda: self.model.now)  # cache ages on the exchange's clock, like its Date
        self.port = config.port
        self.app = self._build_app()

    # ------------------------------------------------------------------ public controls

    @property
    def base_url(self) -> str:
        return f"http://{self._host()}:{self.port}{API}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._host()}:{self.port}{WS_PATH}"

    @property
    def admin_url(self) -> str:
        return f"http://{self._host()}:{self.port}/_sim"

    def _host(self) -> str:
        host = self.config.host
        return "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - a display name, not a bind

    @property
    def log(self) -> MessageLog:
        return self.hub.log

    @property
    def faults(self) -> Faults:
        return self.hub.faults

    def set_faults(self, **changes: Any) -> Faults:
        """Change fault settings (see :class:`Faults`); ``rate_limit_storm_seconds=N`` starts an N-second storm."""
        self.hub.faults = self.hub.faults.update(changes, time.monotonic())
        self.hub.apply_faults()
        log.info("simulator faults changed", **{k: v for k, v in self.hub.faults.model_dump().items() if v})
        return self.hub.faults

    def reset_faults(self) -> Faults:
        self.hub.faults = Faults()
        self.hub.apply_faults()
        return self.hub.faults

    def settle(self, ticker: str, result: Literal["yes", "no"] = "yes", finalize: bool = False) -> Market:
        """Settle ``ticker`` mid-stream: close now, determine with ``result``, finalize after the timer."""
        return self.model.force_settle(ticker, result, finalize)

    def inject_ws_frame(self, text: str) -> int:
        """Send ``text`` verbatim to every open WebSocket (e.g. malformed JSON); returns how many got it.

        Not a data frame: it consumes no ``seq`` and is not in the message log, only counted.
        """
        conns = [c for c in self.hub.connections.values() if not c.closing]
        for conn in conns:
            conn.push(text)
        self.injected["ws_raw_frames"] += len(conns)
        return len(conns)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def state(self) -> dict[str, Any]:
        m = self.model
        return {
            "seed": m.seed,
            "now_ts": m.now,
            "speed": self.config.speed,
            "paused": self.paused,
            "markets": len(m.market_list),
            "events": len(m.event_list),
            "markets_by_status": m.status_counts(),
            "trades_generated": m.trades_generated,
            "connections": len(self.hub.connections),
            "subscriptions": sum(len(c.subs) for c in self.hub.connections.values()),
            "ws_frames_logged": self.log.total,
            "ws_frames_sent": self.log.sent,
            "ws_frames_dropped": self.log.dropped,
            "rest_requests": self.requests,
            "rest_cache": {"hits": self.cdn.hits, "misses": self.cdn.misses},
            "injected": dict(self.injected),
            "faults": self.faults.model_dump(),
        }

    # ------------------------------------------------------------------ the clock

    async def run_clock(self) -> None:
        """Advance the model to ``origin + speed x (running real time)``.

        At speed 1 the clock is wall time and never re-anchored: backpressure and the per-step event budget only
        delay the work, the target keeps moving, and the model catches up afterwards (its events keep their true
        timestamps and are emitted late). At other speeds the simulator runs its own clock, which every message
        and ``/_sim/state`` report; there a lag re-anchors it (it runs slower rather than chase a speed the
        machine cannot sustain). A pause, a test tool, stops time at any speed.
        """
        cfg = self.config
        loop = asyncio.get_running_loop()
        wall = cfg.speed == 1.0
        # At speed 1 without a fixed start the exchange is on wall time (the model was built on the minute, so the
        # first step catches up the seconds since); otherwise the model's own start keeps runs reproducible.
        origin_sim = time.time() if cfg.start_ts is None and wall else self.model.now
        origin_real = loop.time()
        paused_since: float | None = None
        while True:
            self.hub.apply_faults()
            now_real = loop.time()
            if self.paused:
                if paused_since is None:
                    paused_since = now_real
                await asyncio.sleep(cfg.tick_interval)
                continue
            if paused_since is not None:
                origin_real += now_real - paused_since
                paused_since = None
            if cfg.backpressure_frames and self.hub.max_queue() > cfg.backpressure_frames:
                if not wall:
                    origin_real, origin_sim = now_real, self.model.now
                await asyncio.sleep(cfg.tick_interval)
                continue
            target = origin_sim + cfg.speed * (now_real - origin_real)
            n = self.model.advance_to(target, cfg.max_events_per_step)
            if n >= cfg.max_events_per_step:  # behind: let the sockets drain, then go on
                if not wall:
                    origin_real, origin_sim = loop.time(), self.model.now
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(cfg.tick_interval)

    # ------------------------------------------------------------------ HTTP front door

    def _build_app(self) -> Starlette:
        async def not_found(request: Request, exc: Exception) -> Response:
            status = exc.status_code if isinstance(exc, HTTPException) else 500
            code = {404: "not_found", 405: "method_not_allowed"}.get(status, "internal_server_error")
            return error_response(status, code, str(getattr(exc, "detail", "error")).lower())

        app = Starlette(
            routes=[
                *routes(self),
                WebSocketRoute(WS_PATH, WebSocketEndpoint(self.hub, self.keys, self.config.require_auth)),
            ],
            exception_handlers={HTTPException: not_found},
        )
        return app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """ASGI entry: auth, rate limits and REST faults in front of the Starlette app."""
        if scope["type"] != "http" or not scope["path"].startswith("/trade-api/"):
            await self.app(scope, receive, send)
            return
        self.requests += 1
        faults = self.hub.faults
        rng = self.fault_rng
        if faults.latency_ms or faults.latency_jitter_ms:
            await asyncio.sleep((faults.latency_ms + rng.uniform(0, faults.latency_jitter_ms)) / 1000)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            key_id = self.keys.verify(headers, scope["method"], scope["path"])
            if key_id is None and self.config.require_auth:
                raise AuthError("authentication required")
        except AuthError as exc:
            self.injected["unauthorized"] += 1
            body = json.dumps({"error": {"code": "unauthorized", "message": str(exc), "details": ""}}).encode()
            await _respond(send, 401, body)
            return
        storm = faults.rate_limit_storm_until is not None and time.monotonic() < faults.rate_limit_storm_until
        if storm or (faults.rate_limit_fraction and rng.random() < faults.rate_limit_fraction):
            self.injected["rate_limited"] += 1
            await _respond(send, 429, TOO_MANY)
            return
        if self.config.rate_limit:
            client = key_id or (scope.get("client") or ("?", 0))[0]
            bucket = self.buckets.get(client)
            if bucket is None:
                rate = self.config.rate_limit
                bucket = self.buckets[client] = TokenBucket(rate, self.config.rate_burst or 2 * rate)
            if not bucket.take():
                await _respond(send, 429, TOO_MANY)
                return
        if faults.server_error_fraction and rng.random() < faults.server_error_fraction:
            self.injected["server_error"] += 1
            status = rng.choice((500, 502, 503))
            body = json.dumps(
                {"error": {"code": "internal_server_error", "message": "simulated server error", "details": ""}}
            ).encode()
            await _respond(send, status, body)
            return
        if faults.truncate_fraction and rng.random() < faults.truncate_fraction:
            self.injected["truncated"] += 1
            send = _truncating(send)
        if faults.rest_stale_seconds > 0 and scope["method"] == "GET":
            await self.cdn.serve(scope, receive, send, self._origin, faults.rest_stale_seconds)
            return
        await self._origin(scope, receive, send)

    async def _origin(self, scope: Any, receive: Any, send: Any) -> None:
        """The REST app, its answers dated on the exchange's clock (a cache keeps the date and adds ``Age``)."""
        date = formatdate(self.model.now, usegmt=True).encode()

        async def dated(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                message = {**message, "headers": [*headers, (b"date", date)]}
            await send(message)

        await self.app(scope, receive, dated)


def _truncating(send: Any) -> Any:
    """An ASGI ``send`` that delivers only the first half of the response body (with a matching length)."""
    start: dict[str, Any] = {}
    body = bytearray()

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        body.extend(message.get("body", b""))
        if message.get("more_body"):
            return
        cut = bytes(body[: len(body) // 2])
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(cut)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": cut})

    return wrapped


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _ws_protocol_class() -> Any:
    """uvicorn's sans-I/O WebSocket protocol, exposing itself to the app so silence can stop its pings."""
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    except ImportError:  # pragma: no cover - older uvicorn: default protocol, pings keep flowing during silence
        return "auto"

    class SimWebSocketProtocol(WebSocketsSansIOProtocol):
        def handle_connect(self, event: Any) -> None:
            super().handle_connect(event)
            scope = getattr(self, "scope", None)
            if scope is not None:
                scope["extensions"][PROTOCOL_EXTENSION] = self

    return SimWebSocketProtocol


@contextlib.asynccontextmanager
async def run_simulator(config: SimulatorConfig | None = None) -> AsyncIterator[Simulator]:
    """Serve a simulator in the current event loop until the block exits."""
    config = config or SimulatorConfig()
    sim = Simulator(config)
    uv_config = uvicorn.Config(
        sim,
        host=config.host,
        port=config.port,
        ws=_ws_protocol_class(),
        ws_ping_interval=config.ws_ping_interval,
        ws_ping_timeout=20.0,
        ws_per_message_deflate=False,
        lifespan="off",
        access_log=config.access_log,
        log_config=None,
        date_header=False,  # REST answers carry the exchange's Date (Simulator._origin)
    )
    server = EmbeddedServer(uv_config)
    serve = asyncio.create_task(server.serve(), name="simulator-http")
    while not server.started:
        if serve.done():
            with contextlib.suppress(SystemExit):  # uvicorn exits its task when it cannot bind
                serve.result()
            raise ConflictError(f"simulator: cannot listen on {config.host}:{config.port} (see the log line above)")
        await asyncio.sleep(0.01)
    sockets = [s for srv in server.servers for s in (srv.sockets or ())]
    sim.port = sockets[0].getsockname()[1]
    clock = asyncio.create_task(sim.run_clock(), name="simulator-clock")
    log.info(
        "simulator started",
        url=sim.base_url,
        ws=sim.ws_url,
        seed=config.seed,
        markets=len(sim.model.market_list),
        speed=config.speed,
    )
    try:
        yield sim
    finally:
        clock.cancel()
        for conn in list(sim.hub.connections.values()):
            conn.close(1001, "simulator stopping")
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await clock
        try:
            await asyncio.wait_for(serve, 5.0)
        except (TimeoutError, asyncio.CancelledError):  # pragma: no cover
            server.force_exit = True
        log.info("simulator stopped")
