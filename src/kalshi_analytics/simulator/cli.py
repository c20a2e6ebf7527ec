"""``kalshi-analytics simulate``: run the offline exchange on its own."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer


def simulate(  # noqa: PLR0917 - a typer command: one parameter per CLI option
    host: Annotated[str | None, typer.Option(help="Bind address (default: SIM_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port for REST + WebSocket (default: SIM_PORT, 8765).")] = None,
    seed: Annotated[int, typer.Option(help="Model seed: the same seed gives the same markets and prices.")] = 1,
    markets: Annotated[int, typer.Option(min=1, help="How many markets to keep listed and trading.")] = 50,
    speed: Annotated[float, typer.Option(min=0.001, help="Simulated seconds per real second.")] = 1.0,
    activity: Annotated[float, typer.Option(min=0.0, help="Multiplier on every market's trade rate.")] = 1.0,
    legacy_format: Annotated[
        bool, typer.Option("--legacy-format", help="Serve the integer-cent payloads of the pre-2026 API.")
    ] = False,
    require_auth: Annotated[
        bool, typer.Option("--require-auth", help="Answer unsigned REST/WS requests with 401.")
    ] = False,
    public_key: Annotated[
        list[Path] | None, typer.Option("--public-key", help="PEM public key to accept (repeat with --key-id).")
    ] = None,
    key_id: Annotated[list[str] | None, typer.Option("--key-id", help="Key id of the matching --public-key.")] = None,
    print_demo_key: Annotated[
        bool, typer.Option("--print-demo-key", help="Print a fresh demo key id + RSA key pair and exit.")
    ] = False,
    rate_limit: Annotated[float, typer.Option(min=0.0, help="REST requests/s per client; 0 = unlimited.")] = 100.0,
    rate_burst: Annotated[float | None, typer.Option(help="Token bucket capacity (default 2 s of rate).")] = None,
    drop_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Drop this share of WS data frames.")] = 0.0,
    disconnect_every: Annotated[
        float | None, typer.Option(min=0.001, help="Close every WS connection after this many seconds.")
    ] = None,
    silence: Annotated[bool, typer.Option("--silence", help="Keep WS connections open but send nothing.")] = False,
    rate_limit_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Answer this share 429.")] = 0.0,
    error_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Answer this share of REST 5xx.")] = 0.0,
    latency_ms: Annotated[float, typer.Option(min=0.0, help="Delay added to every REST response.")] = 0.0,
    truncate_fraction: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Cut this share of REST bodies in half.")
    ] = 0.0,
    rest_stale_seconds: Annotated[
        float, typer.Option(min=0.0, help="Serve REST answers from a per-URL cache until this old (Kalshi's CDN: 15).")
    ] = 0.0,
) -> None:
    """Serve Kalshi's REST + WebSocket API from a seeded market model (faults adjustable at /_sim/faults)."""
    from kalshi_analytics.clihelp import fail, run, settings

    if print_demo_key:
        from kalshi_analytics.simulator.auth import generate_demo_key

        key = generate_demo_key()
        typer.echo(f"key id: {key.key_id}\n")
        typer.echo("private key (give to the client, e.g. KALSHI_PRIVATE_KEY_PATH):")
        typer.echo(key.private_pem)
        typer.echo("public key (give to the simulator: --public-key FILE --key-id ID):")
        typer.echo(key.public_pem)
        return

    keys = public_key or []
    ids = key_id or []
    if len(keys) != len(ids):
        fail("give one --key-id per --public-key")
    for path in keys:
        if not path.is_file():
            fail(f"no such file: {path}")

    s = settings()
    from kalshi_analytics.simulator.faults import Faults
    from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator
    from kalshi_analytics.web.server import ensure_port_free

    public_keys: dict[str, str | Path] = dict(zip(ids, keys, strict=True))
    config = SimulatorConfig(
        host=host or s.sim_host,
        port=s.sim_port if port is None else port,
        seed=seed,
        markets=markets,
        speed=speed,
        activity=activity,
        legacy_format=legacy_format,
        require_auth=require_auth,
        public_keys=public_keys,
        rate_limit=rate_limit or None,
        rate_burst=rate_burst,
        faults=Faults(
            ws_drop_fraction=drop_fraction,
            ws_disconnect_every=disconnect_every,
            ws_silence=silence,
            rate_limit_fraction=rate_limit_fraction,
            server_error_fraction=error_fraction,
            latency_ms=latency_ms,
            truncate_fraction=truncate_fraction,
            rest_stale_seconds=rest_stale_seconds,
        ),
    )

    ensure_port_free(config.host, config.port, "simulator", "--port or SIM_PORT")

    async def go() -> None:
        async with run_simulator(config) as sim:
            typer.echo(f"REST      {sim.base_url}")
            typer.echo(f"WebSocket {sim.ws_url}")
            typer.echo(f"admin     {sim.admin_url}/state, /faults, /log, /trades, /settle/<ticker>, /clock")
            # Ctrl-C or SIGTERM (a container stopping) closes the servers and exits 0.
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        typer.echo("simulator stopped")

    run(go)
