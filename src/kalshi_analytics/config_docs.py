"""The settings' reference generated from :class:`~kalshi_analytics.config.Settings`: ``.env.example`` and
``docs/configuration.md``.

Every setting appears with its environment variable, default and meaning, so neither file can fall behind the code
(tests compare the committed files with this output)::

    python -m kalshi_analytics.config_docs env-example > .env.example              # or: make env-example
    python -m kalshi_analytics.config_docs reference > docs/configuration.md      # or: make env-example
    python -m kalshi_analytics.config_docs env-example --check .env.example     # exit 1 when out of date

The variables ``docker-compose.yml`` reads for itself (the database password, the published port, …) are listed at
the end; they are not settings of the product.
"""

from __future__ import annotations

import argparse
import enum
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from kalshi_analytics.config import Settings

WIDTH = 116

HEADER = """\
## Kalshi Analytics settings, generated from kalshi_analytics.config.Settings by
##   python -m kalshi_analytics.config_docs env-example > .env.example   (make env-example)
## Do not edit by hand: change the field's description in config.py and regenerate (a test checks they agree).
##
## Copy to .env (read from the working directory, and by docker compose) or set in the environment. Every line
## below is commented out and shows the default, so copying the file changes nothing: uncomment what you change.
## Without any setting the product runs on the built-in simulator and an embedded PostgreSQL.
"""

#: Fields whose default is computed on the machine (an absolute path of the user running it): shown generically.
SHOWN_DEFAULTS = {"data_dir": "~/.local/share/kalshi-analytics"}


@dataclass(frozen=True)
class Section:
    title: str
    matches: Callable[[str], bool]


def _prefix(*prefixes: str) -> Callable[[str], bool]:
    return lambda name: name.startswith(prefixes)


def _names(*names: str) -> Callable[[str], bool]:
    return lambda name: name in names


#: Sections in the order they appear; a field goes to the first that matches (none matching is an error).
SECTIONS: tuple[Section, ...] = (
    Section(
        "Exchange: which one (explicit URLs override KALSHI_ENV's pair), credentials for signed requests, the "
        "client's limits. Each environment records into its own embedded database.",
        _prefix("kalshi_"),
    ),
    Section(
        "Database: unset DB_URL = a private embedded PostgreSQL under KALSHI_ANALYTICS_DATA_DIR.",
        _names("db_url", "db_read_url", "test_database_url", "data_dir"),
    ),
    Section("Recorder and live runner", _names("poll_interval_seconds", "metrics_host")),
    Section("Logging", _prefix("log_")),
    Section(
        "API: listen address, workers, CORS, per-client rate limits, resource limits, readiness, the SSE stream, "
        "the answer cache, the backtest worker and the dashboard",
        lambda name: (
            name.startswith("api_") or name in ("cors_origins", "forwarded_allow_ips", "stream_resume_seconds")
        ),
    ),
    Section("Backtests", _prefix("backtest_")),
    Section("Built-in simulator (KALSHI_ENV=sim)", _prefix("sim_")),
)


@dataclass(frozen=True)
class ComposeVariable:
    name: str
    default: str | None  # None: required (docker-compose.yml says ${NAME:?…})
    description: str


#: Variables docker-compose.yml interpolates that are not settings of the product (a test checks this list
#: against the compose file).
COMPOSE_VARIABLES: tuple[ComposeVariable, ...] = (
    ComposeVariable(
        "COMPOSE_PROFILES",
        "",
        "compose's own: `sim` adds the built-in simulator (set KALSHI_ENV=sim with it) for offline use",
    ),
    ComposeVariable(
        "POSTGRES_PASSWORD",
        None,
        "password of the postgres service's database user (required; URL-safe characters: it goes into DB_URL)",
    ),
    ComposeVariable("POSTGRES_USER", "kalshi", "the postgres service's database user"),
    ComposeVariable("POSTGRES_DB", "kalshi", "the postgres service's database"),
    ComposeVariable("POSTGRES_IMAGE", "postgres:16", "PostgreSQL image (15 or newer)"),
    ComposeVariable(
        "API_PUBLISH",
        "127.0.0.1:8000-8003",
        "host address and port range the api replicas are published on (one port per replica)",
    ),
)


def env_name(name: str, info: FieldInfo) -> str:
    alias = info.validation_alias
    return (alias if isinstance(alias, str) else name).upper()


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ",".join(_plain(v) for v in value)
    if isinstance(value, Decimal | Path | int | float | str):
        return str(value)
    raise TypeError(f"no .env form for {value!r}")


def default_text(name: str, info: FieldInfo) -> str:
    """The default as a .env value ('' for unset)."""
    if name in SHOWN_DEFAULTS:
        return SHOWN_DEFAULTS[name]
    if info.default is not PydanticUndefined:
        return _plain(info.default)
    if info.default_factory is not None:
        return _plain(info.default_factory())  # type: ignore[call-arg]
    raise ValueError(f"setting {name} has no default")


def choices(info: FieldInfo) -> list[str]:
    """The allowed values of a Literal or enum setting."""
    ann = info.annotation
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        return [str(m.value) for m in ann]
    args = typing.get_args(ann)
    if typing.get_origin(ann) is Literal:
        return [str(a) for a in args]
    return []


def bounds(info: FieldInfo) -> list[str]:
    out = []
    for meta in info.metadata:
        for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            value = getattr(meta, attr, None)
            if value is not None:
                out.append(f"{sign} {_plain(value)}")
    return out


def describe(name: str, info: FieldInfo) -> str:
    """One paragraph: the field's description, its allowed values or bounds, and its default."""
    text = (info.description or "").strip()
    if not text:
        raise ValueError(f"setting {name} has no description (give its Field a description=)")
    parts = [text.rstrip(".") + "."]
    allowed = choices(info)
    if allowed and not all(a in text for a in allowed):
        parts.append("One of: " + ", ".join(allowed) + ".")
    limits = bounds(info)
    if limits:
        parts.append("Range: " + ", ".join(limits) + ".")
    default = default_text(name, info)
    parts.append(f"Default: {default or 'unset'}.")
    return " ".join(parts)


def _comment(text: str, prefix: str = "## ") -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=prefix,
        subsequent_indent=prefix,
        break_on_hyphens=False,
        break_long_words=False,
    )


def sections() -> list[tuple[Section, list[tuple[str, FieldInfo]]]]:
    grouped: dict[str, list[tuple[str, FieldInfo]]] = {s.title: [] for s in SECTIONS}
    for name, info in Settings.model_fields.items():
        section = next((s for s in SECTIONS if s.matches(name)), None)
        if section is None:
            raise ValueError(f"setting {name} belongs to no section of config_docs.SECTIONS")
        grouped[section.title].append((name, info))
    return [(s, grouped[s.title]) for s in SECTIONS if grouped[s.title]]


def env_example() -> str:
    """The text of ``.env.example``."""
    lines = [HEADER.rstrip("\n")]
    for section, fields in sections():
        lines += ["", "", *_comment(section.title, "### ")]
        for name, info in fields:
            lines += ["", *_comment(describe(name, info)), f"# {env_name(name, info)}={default_text(name, info)}"]
    lines += [
        "",
        "",
        "### docker-compose.yml's own variables (not settings of the product). `docker compose` refuses to start",
        "### without the required ones, and without KALSHI_ENV (sim, demo or prod): say which exchange to record.",
    ]
    for var in COMPOSE_VARIABLES:
        lines += ["", *_comment(var.description)]
        lines.append(f"{var.name}=" if var.default is None else f"# {var.name}={var.default}")
    return "\n".join(lines) + "\n"


REFERENCE_INTRO = """\
# Configuration reference

<!-- Generated by `python -m kalshi_analytics.config_docs reference` (make env-example) from
     kalshi_analytics.config.Settings; do not edit by hand (tests/test_config_docs.py fails when it is stale). -->

Every process (`kalshi-analytics up`, `recorder`, `api`, `live runner`, `db …`, the `alembic` command line and
the notebooks' `research` module) reads the same settings: environment variables, or a `.env` file in the working
directory (the environment wins; `.env.example` lists them all, commented out). Names are case-insensitive; an
empty value counts as unset. A bad value stops the process with one line naming the variable, e.g.
`invalid setting POLL_INTERVAL_SECONDS: Input should be greater than 0 (got '-1')`.
"""


def _values(info: FieldInfo) -> str:
    """What a setting accepts: its choices, else its type, with its bounds."""
    allowed = choices(info)
    text = " \\| ".join(f"`{a}`" for a in allowed) if allowed else _type_text(info.annotation)
    return ", ".join([text, *bounds(info)])


def _type_text(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in args if a is not type(None))
    if origin is list:
        return f"comma-separated {_type_text(args[0])}s"
    names = {bool: "true/false", int: "integer", float: "number", str: "text", Path: "path", Decimal: "decimal"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def reference() -> str:
    """The text of ``docs/configuration.md``: a table per section of :data:`SECTIONS`."""
    lines = [REFERENCE_INTRO.rstrip("\n")]
    for section, fields in sections():
        heading, _, about = section.title.partition(": ")
        lines += ["", f"## {heading}", ""]
        if about:
            lines += [about[:1].upper() + about[1:].rstrip(".") + ".", ""]
        lines += ["| Variable | Default | Values | Meaning |", "|---|---|---|---|"]
        for name, info in fields:
            default = default_text(name, info)
            meaning = (info.description or "").strip().replace("|", "\\|").replace("\n", " ")
            cells = [f"`{env_name(name, info)}`", f"`{default}`" if default else "unset", _values(info), meaning]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


GENERATORS: dict[str, tuple[Callable[[], str], str]] = {
    "env-example": (env_example, ".env.example"),
    "reference": (reference, "docs/configuration.md"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kalshi_analytics.config_docs", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=sorted(GENERATORS))
    parser.add_argument("--check", type=Path, metavar="FILE", help="exit 1 if FILE differs from the output")
    args = parser.parse_args(argv)
    render, usual_file = GENERATORS[args.what]
    text = render()
    if args.check is not None:
        current = args.check.read_text(encoding="utf-8") if args.check.is_file() else ""
        if current != text:
            print(f"{args.check} is out of date ({usual_file}): run `make env-example`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
