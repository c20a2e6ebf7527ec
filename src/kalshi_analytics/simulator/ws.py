"""The WebSocket side of the simulated exchange: ``/trade-api/ws/v2`` (KALSHI_API.md §5).

The :class:`Hub` receives every model event synchronously, formats each message body once per event, and
hands every matching subscription its own envelope with the next ``seq`` of that ``sid``. Each connection
owns a queue drained by its sender task, so a burst of model events never waits on a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kalshi_analytics.logs import get_logger
from kalshi_analytics.simulator import wire
from kalshi_analytics.simulator.auth import AuthError, KeyStore
from kalshi_analytics.simulator.faults import Faults, LogEntry, MessageLog
from kalshi_analytics.simulator.model import (
    BookDelta,
    Lifecycle,
    Market,
    MarketModel,
    ModelEvent,
    TickerChange,
    TradePrint,
)

log = get_logger(__name__)

WS_PATH = "/trade-api/ws/v2"
PUBLIC_CHANNELS = ("ticker", "trade", "orderbook_delta", "market_lifecycle_v2")
PRIVATE_CHANNELS = ("fill", "market_positions", "user_orders", "order_group_updates", "communications")
ACTIONS = ("add_markets", "delete_markets", "get_snapshot")
MAX_QUEUE = 1_000_000  # frames waiting for one socket before it is cut off as a slow consumer (error 25)
PROTOCOL_EXTENSION = "kalshi_analytics.sim.protocol"

ERRORS = {
    1: "Unable to process message",
    2: "Params required",
    3: "Channels required",
    4: "Subscription IDs required",
    5: "Unknown command",
    6: "Already subscribed",
    7: "Unknown subscription ID",
    8: "Unknown channel name",
    9: "Authentication required",
    10: "Channel error",
    11: "Invalid parameter",
    12: "Exactly one subscription ID is required",
    13: "Unsupported action",
    14: "Market Ticker required",
    15: "Action required",
    16: "Market not found",
    17: "Internal error",
    25: "Subscription buffer overflow",
}

_CLOSE = object()


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class CommandError(Exception):
    def __init__(self, code: int, market_ticker: str | None = None, detail: str | None = None) -> None:
        super().__init__(detail or ERRORS[code])
        self.code = code
        self.market_ticker = market_ticker


@dataclass(eq=False)
class Subscription:
    sid: int
    channel: str
    conn: Connection
    tickers: set[str] | None  # None = every market
    seq: int = 0  # last seq used


@dataclass(eq=False)
class Connection:
    id: int
    send: Callable[[dict[str, Any]], Any]
    key_id: str | None
    protocol: Any = None  # uvicorn's protocol object when available (for pausing pings)
    opened: float = field(default_factory=time.monotonic)
    queue: deque[Any] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    subs: dict[int, Subscription] = field(default_factory=dict)
    next_sid: int = 1
    closing: bool = False

    def push(self, text: Any) -> None:
        self.queue.append(text)
        if not self.wake.is_set():
            self.wake.set()

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.closing:
            self.closing = True
            self.push((_CLOSE, code, reason))


class Hub:
    """Subscriptions of every connection, fan-out of model events, and the frame log."""

    def __init__(self, model: MarketModel, log_size: int = 2_000_000, legacy: bool = False) -> None:
        self.model = model
        self.legacy = legacy
        self.faults = Faults()
        self.fault_rng = random.Random(model.seed ^ 0x5EED)  # noqa: S311 - reproducible drops
        self.log = MessageLog(log_size)
        self.connections: dict[int, Connection] = {}
        self.by_channel: dict[str, list[Subscription]] = {c: [] for c in PUBLIC_CHANNELS}
        self._conn_ids = itertools.count(1)
        model.listeners.append(self.on_event)

    # ------------------------------------------------------------------ fan-out

    def on_event(self, ev: ModelEvent) -> None:  # noqa: PLR0912 - unrolled per channel: the hot path
        if isinstance(ev, BookDelta):
            subs = self.by_channel["orderbook_delta"]
            if subs:
                ticker = ev.market.ticker
                body: str | None = None
                for sub in subs:
                    if sub.tickers is None or ticker in sub.tickers:
                        if body is None:
                            body = wire.ws_delta(ev, self.legacy)
                        self._deliver(sub, "orderbook_delta", body, ticker, None)
        elif isinstance(ev, TickerChange):
            subs = self.by_channel["ticker"]
            if subs:
                ticker = ev.market.ticker
                body = None
                for sub in subs:
                    if sub.tickers is None or ticker in sub.tickers:
                        if body is None:
                            body = wire.ws_ticker(ev.market, ev.ts_ms, self.legacy)
                        self._deliver(sub, "ticker", body, ticker, None)
        elif isinstance(ev, TradePrint):
            subs = self.by_channel["trade"]
            if subs:
                t = ev.trade
                ticker = t.market.ticker
                body = None
                for sub in subs:
                    if sub.tickers is None or ticker in sub.tickers:
                        if body is None:
                            body = wire.ws_trade(t, self.legacy)
                        self._deliver(sub, "trade", body, ticker, t.trade_id)
        elif isinstance(ev, Lifecycle):
            subs = self.by_channel["market_lifecycle_v2"]
            if subs:
                ticker = ev.market.ticker
                event = ev.market.event
                if ev.event_type == "created" and event.markets[0] is ev.market:
                    # a new event is announced once, before the creation of its first market
                    event_body = wire.ws_event_lifecycle(event)
                    for sub in subs:
                        if sub.tickers is None or not sub.tickers.isdisjoint(m.ticker for m in event.markets):
                            self._deliver(sub, "event_lifecycle", event_body, event.event_ticker, None)
                body = None
                for sub in subs:
                    if sub.tickers is None or ticker in sub.tickers:
                        if body is None:
                            body = wire.ws_lifecycle(ev, self.legacy)
                        self._deliver(sub, "market_lifecycle_v2", body, ticker, None)

    def _deliver(self, sub: Subscription, typ: str, body: str, ticker: str, trade_id: str | None) -> None:
        seq = sub.seq + 1
        sub.seq = seq
        faults = self.faults
        conn = sub.conn
        dropped = faults.ws_silence or conn.closing
        if not dropped and faults.ws_drop_fraction > 0.0:
            dropped = self.fault_rng.random() < faults.ws_drop_fraction
        self.log.append(LogEntry(conn.id, sub.sid, seq, typ, ticker, trade_id, dropped))
        if not dropped:
            conn.push(f'{{"type":"{typ}","sid":{sub.sid},"seq":{seq},"msg":{body}}}')
            if len(conn.queue) > MAX_QUEUE:
                conn.push(_error_text(0, 25))
                conn.close(1011, "slow consumer")

    def max_queue(self) -> int:
        return max((len(c.queue) for c in self.connections.values()), default=0)

    # ------------------------------------------------------------------ faults that act on connections

    def apply_faults(self) -> None:
        """Called periodically by the clock: disconnect-every-N and the ping side of silence."""
        every = self.faults.ws_disconnect_every
        now = time.monotonic()
        for conn in list(self.connections.values()):
            if every is not None and now - conn.opened >= every:
                conn.close(1011, "simulated disconnect")
            proto = conn.protocol
            if proto is not None and hasattr(proto, "stop_keepalive"):
                silent = self.faults.ws_silence
                if silent and getattr(proto, "ping_timer", None) is not None:
                    proto.stop_keepalive()
                elif not silent and getattr(proto, "ping_timer", None) is None and not conn.closing:
                    with contextlib.suppress(Exception):
                        if getattr(proto, "pending_ping_payload", None) is None:
                            proto.start_keepalive()

    # ------------------------------------------------------------------ connections and commands

    def open(self, send: Callable[[dict[str, Any]], Any], key_id: str | None, protocol: Any) -> Connection:
        conn = Connection(next(self._conn_ids), send, key_id, protocol)
        self.connections[conn.id] = conn
        return conn

    def drop(self, conn: Connection) -> None:
        self.connections.pop(conn.id, None)
        for sub in conn.subs.values():
            with contextlib.suppress(ValueError):
                self.by_channel[sub.channel].remove(sub)
        conn.subs.clear()
        conn.closing = True

    def reply(self, conn: Connection, text: str) -> None:
        if not self.faults.ws_silence:
            conn.push(text)

    def handle(self, conn: Connection, raw: str) -> None:
        cmd_id: Any = 0
        try:
            try:
                msg = json.loads(raw)
            except ValueError:
                raise CommandError(1) from None
            if not isinstance(msg, dict):
                raise CommandError(1)
            cmd_id = msg.get("id", 0)
            if not isinstance(cmd_id, int) or isinstance(cmd_id, bool):
                cmd_id = 0
                raise CommandError(1)
            cmd = msg.get("cmd")
            params = msg.get("params")
            if cmd == "subscribe":
                self._subscribe(conn, cmd_id, params)
            elif cmd == "unsubscribe":
                self._unsubscribe(conn, cmd_id, params)
            elif cmd == "update_subscription":
                self._update(conn, cmd_id, params)
            elif cmd == "list_subscriptions":
                subs = [{"channel": s.channel, "sid": s.sid} for s in conn.subs.values()]
                self.reply(conn, _dumps({"id": cmd_id, "type": "ok", "msg": subs}))
            else:
                raise CommandError(5)
        except CommandError as exc:
            self.reply(conn, _error_text(cmd_id, exc.code, exc.market_ticker, str(exc)))

    def _tickers(self, params: dict[str, Any], channel: str | None) -> list[str] | None:
        one, many = params.get("market_ticker"), params.get("market_tickers")
        ids = params.get("market_ids") or ([params["market_id"]] if params.get("market_id") else None)
        given = sum(x is not None for x in (one, many, ids))
        if given > 1:
            raise CommandError(11, detail="market_ticker, market_tickers and market_id(s) are mutually exclusive")
        if ids is not None:
            if channel not in (None, "ticker"):
                raise CommandError(11, detail="market_id is only supported on the ticker channel")
            by_id = {m.market_id: m.ticker for m in self.model.market_list}
            out = []
            for i in ids:
                if i not in by_id:
                    raise CommandError(16, detail=f"market id {i} not found")
                out.append(by_id[i])
            return out
        if one is not None:
            many = [one]
        if many is None:
            return None
        if not isinstance(many, list) or not all(isinstance(t, str) for t in many):
            raise CommandError(11, detail="market_tickers must be a list of strings")
        for t in many:
            if t not in self.model.markets:
                raise CommandError(16, market_ticker=t)
        return list(dict.fromkeys(many))

    def _subscribe(self, conn: Connection, cmd_id: int, params: Any) -> None:
        if not isinstance(params, dict):
            raise CommandError(2)
        channels = params.get("channels")
        if not channels:
            raise CommandError(3)
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise CommandError(11, detail="channels must be a list of strings")
        for ch in channels:
            if ch in PRIVATE_CHANNELS:
                raise CommandError(9 if conn.key_id is None else 10, detail=f"channel {ch} is not simulated")
            if ch not in PUBLIC_CHANNELS:
                raise CommandError(8)
        tickers = self._tickers(params, channels[0] if len(channels) == 1 else None)
        if "orderbook_delta" in channels and not tickers:
            raise CommandError(14)
        existing = {s.channel: s for s in conn.subs.values()}
        for ch in channels:
            old = existing.get(ch)
            if old is not None and (old.tickers is None or tickers is None or set(tickers) <= old.tickers):
                raise CommandError(6)
        initial_ticker = bool(params.get("send_initial_snapshot"))
        for ch in channels:
            old = existing.get(ch)
            if old is not None:  # idempotent subscribe: new tickers join the existing subscription
                assert old.tickers is not None
                assert tickers is not None
                added = [t for t in tickers if t not in old.tickers]
                old.tickers.update(added)
                self.reply(conn, self._ok_text(cmd_id, old))
                self._initial(old, added, initial_ticker)
                continue
            sub = Subscription(conn.next_sid, ch, conn, set(tickers) if tickers is not None else None)
            conn.next_sid += 1
            conn.subs[sub.sid] = sub
            self.by_channel[ch].append(sub)
            self.reply(conn, _dumps({"id": cmd_id, "type": "subscribed", "msg": {"channel": ch, "sid": sub.sid}}))
            self._initial(sub, tickers, initial_ticker)

    def _initial(self, sub: Subscription, tickers: list[str] | None, initial_ticker: bool) -> None:
        if sub.channel == "orderbook_delta":
            self.send_snapshots(sub, tickers or [])
        elif sub.channel == "ticker" and initial_ticker:
            markets = (
                [self.model.markets[t] for t in tickers]
                if tickers is not None
                else [m for m in self.model.market_list if m.status == "active"]
            )
            ts_ms = int(self.model.now * 1000)
            for m in markets:
                self._deliver(sub, "ticker", wire.ws_ticker(m, ts_ms, self.legacy), m.ticker, None)

    def send_snapshots(self, sub: Subscription, tickers: list[str]) -> None:
        for t in tickers:
            m: Market = self.model.markets[t]
            self._deliver(sub, "orderbook_snapshot", wire.ws_snapshot(m, self.legacy), t, None)

    def _ok_text(self, cmd_id: int, sub: Subscription) -> str:
        tickers = sorted(sub.tickers) if sub.tickers is not None else []
        return _dumps({"id": cmd_id, "sid": sub.sid, "seq": sub.seq, "type": "ok", "msg": {"market_tickers": tickers}})

    def _unsubscribe(self, conn: Connection, cmd_id: int, params: Any) -> None:
        if not isinstance(params, dict):
            raise CommandError(2)
        sids = params.get("sids")
        if not sids or not isinstance(sids, list):
            raise CommandError(4)
        for sid in sids:
            if sid not in conn.subs:
                raise CommandError(7)
        for sid in sids:
            sub = conn.subs.pop(sid)
            self.by_channel[sub.channel].remove(sub)
            self.reply(conn, _dumps({"id": cmd_id, "sid": sid, "seq": sub.seq, "type": "unsubscribed"}))

    def _update(self, conn: Connection, cmd_id: int, params: Any) -> None:  # noqa: PLR0912 - KALSHI_API.md §5 checks
        if not isinstance(params, dict):
            raise CommandError(2)
        sids = params.get("sids")
        sid = params.get("sid")
        if sids is not None:
            if not isinstance(sids, list) or len(sids) != 1 or sid is not None:
                raise CommandError(12)
            sid = sids[0]
        if sid is None or not isinstance(sid, int):
            raise CommandError(12)
        sub = conn.subs.get(sid)
        if sub is None:
            raise CommandError(7)
        action = params.get("action")
        if not action:
            raise CommandError(15)
        if action not in ACTIONS:
            raise CommandError(13)
        tickers = self._tickers(params, sub.channel)
        if not tickers:
            raise CommandError(14)
        if action == "get_snapshot":
            if sub.channel != "orderbook_delta":
                raise CommandError(13, detail="get_snapshot is only supported on orderbook_delta")
            for t in tickers:
                if sub.tickers is not None and t not in sub.tickers:
                    raise CommandError(16, market_ticker=t, detail="market is not in this subscription")
            self.reply(conn, self._ok_text(cmd_id, sub))
            self.send_snapshots(sub, tickers)
            return
        if sub.tickers is None:
            raise CommandError(11, detail="subscription already covers every market")
        if action == "add_markets":
            added = [t for t in tickers if t not in sub.tickers]
            sub.tickers.update(added)
            self.reply(conn, self._ok_text(cmd_id, sub))
            if sub.channel == "orderbook_delta":
                self.send_snapshots(sub, added)
        else:
            sub.tickers.difference_update(tickers)
            self.reply(conn, self._ok_text(cmd_id, sub))


def _error_text(cmd_id: int, code: int, market_ticker: str | None = None, message: str | None = None) -> str:
    msg: dict[str, Any] = {"code": code, "msg": message or ERRORS[code]}
    if market_ticker is not None:
        msg["market_ticker"] = market_ticker
    return _dumps({"id": cmd_id, "type": "error", "msg": msg})


class WebSocketEndpoint:
    """Raw ASGI WebSocket app (no per-message framework overhead on the hot path)."""

    def __init__(self, hub: Hub, keys: KeyStore, require_auth: bool) -> None:
        self.hub = hub
        self.keys = keys
        self.require_auth = require_auth

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":  # pragma: no cover - routed by path only
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            key_id = self.keys.verify(headers, "GET", WS_PATH)
            if key_id is None and self.require_auth:
                raise AuthError("authentication required")
        except AuthError as exc:
            await _deny(scope, send, str(exc))
            return
        await send({"type": "websocket.accept"})
        protocol = scope.get("extensions", {}).get(PROTOCOL_EXTENSION)
        hub = self.hub
        conn = hub.open(send, key_id, protocol)
        sender = asyncio.create_task(self._sender(conn))
        try:
            while True:
                message = await receive()
                typ = message["type"]
                if typ == "websocket.receive":
                    text = message.get("text")
                    if text is None:
                        text = (message.get("bytes") or b"").decode("utf-8", "replace")
                    if not conn.closing:
                        hub.handle(conn, text)
                elif typ == "websocket.disconnect":
                    break
        finally:
            hub.drop(conn)
            conn.push(None)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(sender, 1.0)

    async def _sender(self, conn: Connection) -> None:
        send = conn.send
        queue = conn.queue
        wake = conn.wake
        try:
            while True:
                while queue:
                    item = queue.popleft()
                    if isinstance(item, str):
                        await send({"type": "websocket.send", "text": item})
                    elif item is None:
                        return
                    else:
                        _, code, reason = item
                        await send({"type": "websocket.close", "code": code, "reason": reason})
                        return
                wake.clear()
                await wake.wait()
        except Exception:  # the peer went away; the receive loop cleans up
            conn.closing = True
            return


async def _deny(scope: Any, send: Any, reason: str) -> None:
    body = _dumps({"error": {"code": "unauthorized", "message": reason, "details": ""}}).encode()
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # pragma: no cover - servers without the denial extension answer 403
        await send({"type": "websocket.close", "code": 1008, "reason": reason})
