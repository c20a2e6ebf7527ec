"""Just enough of Docker Compose to check docker-compose.yml without Docker: loading (YAML merge keys included),
variable interpolation as the Compose specification defines it, ``.env``/``env_file`` parsing, profiles and scale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt}, ${NAME+alt}, $NAME, $$
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    """A required variable (``${NAME:?message}``) is missing: Compose refuses the file with the message."""


def interpolate(text: str, env: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group("escaped"):
            return "$"
        name = m.group("braced") or m.group("plain")
        op, arg = m.group("op"), m.group("arg") or ""
        value = env.get(name)
        unset_or_empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return interpolate(arg, env) if unset_or_empty else str(value)
        if op in (":?", "?"):
            if unset_or_empty:
                raise InterpolationError(f"required variable {name} is missing a value: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if unset_or_empty else interpolate(arg, env)
        return value or ""

    return _VARIABLE.sub(one, text)


def variables(text: str) -> set[str]:
    """The names interpolated in ``text`` (a compose file's source)."""
    return {m.group("braced") or m.group("plain") for m in _VARIABLE.finditer(text) if not m.group("escaped")}


def _walk(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [_walk(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, env) for k, v in value.items()}
    return value


def parse_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (comments, blank lines, ``export``, quotes) as Compose reads ``.env`` and env_file."""
    out: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        out[key.strip()] = value
    return out


def load_raw(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def load(path: Path, environ: dict[str, str]) -> dict[str, Any]:
    """The compose file interpolated as ``docker compose config`` would: the process environment first, then the
    project's ``.env`` (next to the file)."""
    dotenv = path.parent / ".env"
    env = {**(parse_env_file(dotenv) if dotenv.is_file() else {}), **environ}
    return _walk(load_raw(path), env)


def as_dict(environment: Any) -> dict[str, str]:
    """A service's ``environment`` (mapping or list of KEY=VALUE) as a mapping."""
    if environment is None:
        return {}
    if isinstance(environment, dict):
        return {
            k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in environment.items()
        }
    return dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)


def env_files(service: dict[str, Any], project: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    entries = service.get("env_file") or []
    for entry in [entries] if isinstance(entries, str | dict) else entries:
        spec = {"path": entry} if isinstance(entry, str) else entry
        path = project / spec["path"]
        if not path.is_file():
            if spec.get("required", True):
                raise FileNotFoundError(path)
            continue
        out.update(parse_env_file(path))
    return out


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started", "required": True} for name in deps}
    return {name: {"condition": "service_started", "required": True, **(spec or {})} for name, spec in deps.items()}


def active_services(doc: dict[str, Any], profiles: set[str]) -> dict[str, dict[str, Any]]:
    """The services ``docker compose --profile …`` starts: those without profiles, and those of a chosen one."""
    return {
        name: svc for name, svc in doc["services"].items() if not svc.get("profiles") or profiles & set(svc["profiles"])
    }


def start_order(services: dict[str, dict[str, Any]]) -> list[str]:
    """The services in an order that starts every one after what it depends on (absent optional ones skipped)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        assert name not in visiting, f"dependency cycle through {name}"
        visiting.add(name)
        for dep, spec in depends_on(services[name]).items():
            if dep in services:
                visit(dep)
            else:
                assert not spec["required"], f"{name} requires {dep}, which is not started"
        visiting.discard(name)
        order.append(name)

    for name in services:
        visit(name)
    return order


@dataclass
class Healthcheck:
    test: list[str]  # ["CMD", ...] or ["CMD-SHELL", "..."]
    options: dict[str, str] = field(default_factory=dict)

    def argv(self) -> list[str]:
        kind, *rest = self.test
        if kind == "CMD":
            return rest
        if kind == "CMD-SHELL":
            return ["/bin/sh", "-c", rest[0]]
        raise ValueError(f"healthcheck test {self.test!r}")
