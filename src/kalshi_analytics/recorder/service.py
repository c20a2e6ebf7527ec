"""The recorder process: leader election, sink, poll loop, stream loop, gap repair, metrics, logs.

    service = RecorderService(engine, settings, RecorderConfig(selection=Selection(series=("KXBTCD",))))
    await service.run(stop_event)        # standby until it holds the lock, then records until stop_event is set

Only the leader connects to the exchange and writes (the sink is fenced by the lease's epoch); a standby waits and
takes over within a few seconds of the leader's death, or once a frozen leader's lease runs out (``LeaderElection``).
A database outage does not end leadership: the loops keep recording into the sink, which holds (and spills) until
the database returns. Being deposed cancels the recording and the instance goes back to standby. ``stop`` flushes
the sink before returning.

Every ``summary_seconds`` one log line says how it goes: markets, messages/s, rows written, gaps open/repaired,
queue depth, exchange→commit lag p50.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.config import Settings
from kalshi_analytics.kalshi.credentials import load_signer, verify_credentials
from kalshi_analytics.kalshi.rest import KalshiRestClient, is_retryable
from kalshi_analytics.kalshi.signing import KalshiSigner
from kalshi_analytics.kalshi.ws import KalshiWsClient
from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder.consistency import SnapshotGate
from kalshi_analytics.recorder.gaps import GapRepairer
from kalshi_analytics.recorder.leader import DEFAULT_LOCK_KEY, LeaderElection, LeadershipLost
from kalshi_analytics.recorder.metrics import RecorderMetrics, commit_lag_quantiles, serve_metrics
from kalshi_analytics.recorder.partitions import PartitionKeeper
from kalshi_analytics.recorder.poll import Poller, Selection
from kalshi_analytics.recorder.rejected import RejectedLog
from kalshi_analytics.recorder.resume import Resume
from kalshi_analytics.recorder.sink import Sink
from kalshi_analytics.recorder.stream import StreamRecorder

log = get_logger(__name__)

#: The first poll of a leadership, while the exchange cannot be reached: tried again after this, doubling to the max.
FIRST_POLL_WAIT_SECONDS = 1.0
FIRST_POLL_WAIT_MAX_SECONDS = 30.0


@dataclass
class RecorderConfig:
    selection: Selection = field(default_factory=Selection)
    poll_interval: float | None = None  # None = settings.poll_interval_seconds
    book_interval: float = 10.0
    sweep_every: int | None = 6  # trade sweep every N polls (None = off)
    summary_seconds: float = 30.0
    metrics_port: int | None = None  # None = no HTTP endpoint; 0 = any free port
    metrics_addr: str = "127.0.0.1"
    lock_key: int = DEFAULT_LOCK_KEY
    rest_max_age: float = 15.0  # how old a REST answer may be (Kalshi's CDN: max-age=15); see recorder.consistency
    sink_close_seconds: float = 3.0  # bound on stopping the sink after the lock was lost
    resume_max: timedelta = timedelta(hours=6)  # how far back a new leader backfills trades at most
    instance_id: str | None = None
    rejected_frames_path: Path | None = None
    spill_dir: Path | None = None  # where the sink spills during a database outage (None = <data dir>/recorder-spill)
    sink_options: dict[str, Any] = field(default_factory=dict)
    election_options: dict[str, Any] = field(default_factory=dict)
    ws_options: dict[str, Any] = field(default_factory=dict)
    partition_options: dict[str, Any] = field(default_factory=dict)


class RecorderService:
    """One recorder instance (leader or standby)."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        config: RecorderConfig | None = None,
        *,
        metrics: RecorderMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.config = config or RecorderConfig()
        self.metrics = metrics or RecorderMetrics()
        self.election = LeaderElection(
            engine,
            lock_key=self.config.lock_key,
            instance_id=self.config.instance_id,
            info=self.info,
            metrics=self.metrics,
            **self.config.election_options,
        )
        self.partitions = PartitionKeeper(engine, self.metrics, **self.config.partition_options)
        self.sink: Sink | None = None
        self.poller: Poller | None = None
        self.stream: StreamRecorder | None = None
        self.gaps: GapRepairer | None = None
        self.gate: SnapshotGate | None = None
        self.ws: KalshiWsClient | None = None
        self.rejected: RejectedLog | None = None
        self.ready = asyncio.Event()  # set once this instance records (leader, subscribed)
        self.metrics_url: str | None = None
        self._metrics_server: Any = None
        self._last_summary: tuple[float, int] = (time.monotonic(), 0)
        self._rate_mark: tuple[float, int] = (time.monotonic(), 0)  # (when, messages) the heartbeat rate runs from
        self._msgs_per_s: float | None = None
        self._led_before = False
        self._zombies: set[asyncio.Future[None]] = set()
        self._signer: KalshiSigner | None = None

    # ----------------------------------------------------------------------------------------------- status
    def info(self) -> dict[str, Any]:
        """The heartbeat's ``info`` and the summary line."""
        out: dict[str, Any] = {"selection": self.config.selection.describe()}
        if self.poller is not None:
            out["markets"] = self.poller.stats.markets
            out["polls"] = self.poller.stats.polls
        if self.stream is not None:
            out["messages"] = self.stream.messages
            out["subscribed"] = len(self.stream.tickers)
            rate = self._message_rate(self.stream.messages)
            if rate is not None:
                out["msgs_per_s"] = rate
        if self.sink is not None:
            st = self.sink.stats
            out["rows_written"] = sum(st.new.values())
            out["queue_depth"] = st.queue_depth
            out["held"] = self.sink.held
            if st.db_down_since is not None:
                out["db_down_since"] = st.db_down_since.isoformat()
        if self.gaps is not None:
            out["gaps_open"] = self.gaps.stats.open
            out["gaps_repaired"] = self.gaps.stats.repaired
        if self.ws is not None:
            out["bad_frames"] = self.ws.counters.bad_frames
        if self.rejected is not None and self.rejected.counts:
            out["rejected"] = dict(self.rejected.counts)  # frames and rows, by reason
        if self.gate is not None:
            out["snapshots_held_back"] = sum(self.gate.held_back.values())
        # Exchange time → commit, as PromQL's histogram_quantile reads the same buckets: the log, the heartbeat
        # (so /recorder/status) and /metrics tell one figure.
        out.update(commit_lag_quantiles(self.metrics))
        return out

    def _message_rate(self, messages: int, min_seconds: float = 1.0) -> float | None:
        """Messages per second since the previous rate mark (the heartbeat calls :meth:`info` every few seconds);
        a call sooner than ``min_seconds`` after the mark keeps the last rate."""
        now = time.monotonic()
        then, before = self._rate_mark
        if now - then >= min_seconds:
            self._msgs_per_s = round(max(0, messages - before) / (now - then), 1)
            self._rate_mark = (now, messages)
        return self._msgs_per_s

    def summary(self) -> dict[str, Any]:
        info = self.info()
        now = time.monotonic()
        msgs = int(info.get("messages", 0))
        then, before = self._last_summary
        self._last_summary = (now, msgs)
        info["msgs_per_s"] = round((msgs - before) / max(1e-9, now - then), 1)
        return info

    # -------------------------------------------------------------------------------------------------- run
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Stand by, lead, and record until ``stop`` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        await self.check_credentials()
        self._start_metrics()
        try:
            async with self.election:
                while not stop.is_set():
                    waiter = asyncio.create_task(self._lead_when_elected(stop))
                    stopper = asyncio.create_task(stop.wait())
                    try:
                        done, _ = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    except asyncio.CancelledError:
                        # Cancelled from outside: the recording must not live on as an orphan task.
                        waiter.cancel()
                        with contextlib.suppress(asyncio.CancelledError, LeadershipLost):
                            await waiter
                        raise
                    finally:
                        stopper.cancel()
                    if waiter in done:
                        exc = waiter.exception()
                        if isinstance(exc, LeadershipLost):
                            log.warning("recorder_back_to_standby", reason=str(exc))
                            continue
                        if exc is not None:
                            raise exc
                        return
                    if self.election.is_leader:
                        # Leading: _record sees the same stop and winds down itself, flushing the sink.
                        with contextlib.suppress(LeadershipLost):
                            await waiter
                    else:
                        waiter.cancel()  # stop while standing by
                        with contextlib.suppress(asyncio.CancelledError, LeadershipLost):
                            await waiter
        finally:
            self._stop_metrics()

    async def check_credentials(self) -> None:
        """Load the API key and have the exchange accept it before standing for election: a standby with a broken
        key must fail now, with one line, not when it takes over (``KalshiCredentialsError``)."""
        self._signer = load_signer(self.settings)
        if self._signer is not None:
            async with KalshiRestClient.from_settings(self.settings, signer=self._signer) as rest:
                await verify_credentials(rest)

    def _start_metrics(self) -> None:
        port = self.config.metrics_port
        if port is None:
            return
        try:
            self._metrics_server = serve_metrics(self.metrics, port, self.config.metrics_addr)
        except OSError as exc:
            log.warning("recorder_metrics_port_busy", port=port, error=str(exc), fallback="any free port")
            self._metrics_server = serve_metrics(self.metrics, 0, self.config.metrics_addr)
        real = self._metrics_server.server_port
        self.metrics_url = f"http://{self.config.metrics_addr}:{real}/metrics"

    def _stop_metrics(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None

    async def _lead_when_elected(self, stop: asyncio.Event) -> None:
        async with self.election.leadership():
            await self._record(stop)

    def _connect(self) -> tuple[KalshiRestClient, KalshiWsClient, RejectedLog, Sink]:
        """This leadership's exchange clients, rejected-frame log and sink (started)."""
        s, cfg = self.settings, self.config
        loaded = {} if self._signer is None else {"signer": self._signer}  # else: loaded (or absent) here
        rest = KalshiRestClient.from_settings(s, **loaded)
        ws = KalshiWsClient.from_settings(s, **{**loaded, **cfg.ws_options})
        rejected = RejectedLog(cfg.rejected_frames_path or (s.data_dir / "rejected_frames.jsonl"), metrics=self.metrics)
        ws.dispatcher.bad_frames = rest.rejected = self.rejected = rejected
        sink_opts = {
            "fence": self.election.fence,
            "batch_max_seconds": 0.1,
            # Candles and the stored raw pages hold the implied probability as the API computes it.
            "max_spread": s.api_max_spread,
            "on_rejected": rejected.row_refused,
            "spill_dir": cfg.spill_dir or (s.data_dir / "recorder-spill"),
            # The stream's journal outlives the resume window with a margin (clocks, a slow client's catch-up).
            "journal_keep_seconds": 2 * s.stream_resume_seconds,
            **cfg.sink_options,
        }
        sink = Sink(self.engine, metrics=self.metrics, **sink_opts)
        sink.start()
        self.election.on_reconnected = sink.retry_now  # flush what it held at once, not after the next backoff
        return rest, ws, rejected, sink

    async def _record(self, stop: asyncio.Event) -> None:
        s, cfg = self.settings, self.config
        rest, ws, rejected, sink = self._connect()
        tasks: list[asyncio.Task[Any]] = []
        clean = False
        try:
            async with rest:
                self.sink, self.ws = sink, ws
                gate = await self._open_gate(sink)
                poller = Poller(
                    rest,
                    gate.put,
                    cfg.selection,
                    interval=cfg.poll_interval or s.poll_interval_seconds,
                    metrics=self.metrics,
                    sweep_every=cfg.sweep_every,
                )
                gate.on_held_back = poller.forget
                gaps = GapRepairer(rest, gate.put, poller, metrics=self.metrics)
                stream = StreamRecorder(
                    ws, rest, gate.put, poller, gaps, metrics=self.metrics, book_interval=cfg.book_interval
                )
                poller.on_new_markets = stream.on_new_markets
                self.poller, self.gaps, self.stream = poller, gaps, stream
                ws.start()
                if not await self._first_poll(poller, stop):
                    clean = True
                    return
                await stream.start(poller.tickers)
                await self._resume_gap(gaps, poller)
                self._led_before = True
                log.info(
                    "recorder_recording",
                    instance_id=self.election.instance_id,
                    markets=len(poller.tickers),
                    selection=cfg.selection.describe(),
                    exchange=s.api_base,
                    metrics=self.metrics_url or "off",
                )
                tasks = [
                    asyncio.create_task(poller.run(), name="recorder-poll"),
                    asyncio.create_task(stream.run(), name="recorder-stream"),
                    asyncio.create_task(self._summary_loop(), name="recorder-summary"),
                    asyncio.create_task(self.partitions.run(), name="recorder-partitions"),
                ]
                self.ready.set()
                stopper = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                for t in done:
                    if t is not stopper and not t.cancelled() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
                log.info("recorder_stopping", pending=sink.stats.put - sink.stats.done)
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await ws.close()
                await stream.flush_books(force=True)
                clean = True
        finally:
            self.ready.clear()
            for t in tasks:
                t.cancel()
            if self.gate is not None:
                self.gate.log_summary()
            await self._close_sink(sink, flush=clean)
            rejected.flush()  # the last summary window's count, before its timer dies with the loop
            if self.gaps is not None:
                await self.gaps.close()
            await ws.close()
            log.info("recorder_stopped", **self.info())

    async def _first_poll(self, poller: Poller, stop: asyncio.Event) -> bool:
        """The first poll of a leadership, tried until the exchange answers (a container started before its
        exchange, a network that is down): said once, then every attempt at debug level. False when stopped first.
        Later polls are the poll loop's (it rides out outages by itself)."""
        wait = FIRST_POLL_WAIT_SECONDS
        told = False
        while True:
            try:
                await poller.poll_once(sweep=False)
                if told:
                    log.info("recorder_exchange_reachable", exchange=self.settings.api_base)
                return True
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                (log.debug if told else log.warning)(
                    "recorder_exchange_unreachable",
                    exchange=self.settings.api_base,
                    error=f"{type(exc).__name__}: {exc}"[:200],
                    retry_in_s=wait,
                    hint="is the exchange (or `kalshi-analytics simulate`) running? KALSHI_ENV / KALSHI_API_BASE",
                )
                told = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
                return False
            wait = min(2 * wait, FIRST_POLL_WAIT_MAX_SECONDS)

    async def _open_gate(self, sink: Sink) -> SnapshotGate:
        """The as-of rule in front of the sink, continuing from what is stored (the previous leader's marks)."""
        gate = SnapshotGate(sink.put, metrics=self.metrics, rest_max_age=self.config.rest_max_age)
        await gate.seed(self.engine)
        self.gate = gate
        return gate

    async def _close_sink(self, sink: Sink, *, flush: bool) -> None:
        """Flush (on a clean stop) and stop the sink. After a lost lock, wait at most ``sink_close_seconds``: a
        deposed leader's sink cannot commit anyway (fenced), and the standby loop must not hang on it."""
        closing = asyncio.ensure_future(sink.close(flush=flush))
        done, _ = await asyncio.wait({closing}, timeout=None if flush else self.config.sink_close_seconds)
        if not done:
            log.warning("recorder_sink_close_slow", seconds=self.config.sink_close_seconds)
            self._zombies.add(closing)
            closing.add_done_callback(self._zombies.discard)

    async def _resume_gap(self, gaps: GapRepairer, poller: Poller) -> None:
        """A new leader (after start-up, a crash, a failover or a database outage) repairs the time nobody
        recorded, for every market it was tracking, and re-checks every gap left open (recorder/resume.py)."""
        resume = Resume(self.engine, gaps.rest, poller, gaps, horizon=self.config.resume_max)
        poller.on_gone = resume.vanished  # a tracked market the exchange forgets while we record
        plan = await resume.plan(self.election.instance_id, self._led_before, self.election.leader_since)
        if plan is None:
            return
        gap = await resume.open(plan)
        resume.start(plan, gap)

    async def _summary_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.summary_seconds)
            log.info("recorder_summary", **self.summary())
