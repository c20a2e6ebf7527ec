"""A small Dockerfile reader for the structural checks (hadolint is not on every machine): instructions with line
continuations and comments, build stages with ARG substitution, ENV pairs, exec forms, HEALTHCHECK options."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Instruction:
    keyword: str  # upper case
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for ins in self.all("ENV"):
            out.update(parse_env(ins.args))
        return out


def instructions(text: str) -> list[Instruction]:
    out: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue  # comments (also inside a continued instruction) and blank lines
        if not buf:
            start = n
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        line = " ".join(b for b in buf if b)
        buf = []
        keyword, _, args = line.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
    assert not buf, "the Dockerfile ends inside a continued instruction"
    return out


def _substitute(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), m.group(0)), text)


def stages(text: str) -> tuple[list[Stage], dict[str, str]]:
    """The build stages and the global ARG defaults (declared before the first FROM)."""
    global_args: dict[str, str] = {}
    result: list[Stage] = []
    for ins in instructions(text):
        if ins.keyword == "ARG" and not result:
            name, _, default = ins.args.partition("=")
            global_args[name.strip()] = default.strip()
            continue
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            base = _substitute(words[0], global_args)
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(base, name))
            continue
        assert result, f"line {ins.line}: {ins.keyword} before the first FROM"
        result[-1].instructions.append(ins)
    return result, global_args


def parse_env(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if words and "=" not in words[0]:  # legacy form: ENV KEY value with spaces
        return {words[0]: " ".join(words[1:])}
    return dict(w.split("=", 1) for w in words)


def exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form CMD/ENTRYPOINT/RUN, or None for the shell form."""
    try:
        value = json.loads(args)
    except ValueError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def flags(args: str) -> tuple[dict[str, str], str]:
    """Leading ``--name=value`` options of an instruction, and the rest."""
    opts: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        key, _, value = word[2:].partition("=")
        opts[key] = value
        rest = rest.strip()
    return opts, rest


@dataclass
class Healthcheck:
    options: dict[str, str]
    command: list[str] | None  # exec form; None = shell form or NONE


def healthcheck(ins: Instruction) -> Healthcheck:
    opts, rest = flags(ins.args)
    keyword, _, command = rest.partition(" ")
    if keyword.upper() == "NONE":
        return Healthcheck(opts, None)
    assert keyword.upper() == "CMD", f"line {ins.line}: HEALTHCHECK {rest!r}"
    return Healthcheck(opts, exec_form(command))


def copy_sources(ins: Instruction) -> tuple[dict[str, str], list[str], str]:
    """COPY's options, sources and destination."""
    opts, rest = flags(ins.args)
    words = exec_form(rest) or shlex.split(rest)
    return opts, words[:-1], words[-1]


def dockerignore_patterns(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``relative`` (or a folder holding it) out. Negations (``!``) count too."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.removeprefix("!").strip("/")
        plain = pat.removeprefix("**/")
        hit = any(
            fnmatch.fnmatchcase(c, pat) or (pat.startswith("**/") and fnmatch.fnmatchcase(c.rsplit("/", 1)[-1], plain))
            for c in candidates
        )
        if hit:
            result = not negate
    return result
