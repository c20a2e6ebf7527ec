"""``.env.example`` is generated from Settings and committed: it must be current, and list every setting."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import Field

from kalshi_analytics import config_docs
from kalshi_analytics.config import Settings
from tests.conftest import REPO_ROOT

ENV_EXAMPLE = REPO_ROOT / ".env.example"


def test_env_example_is_current() -> None:
    current = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert current == config_docs.env_example(), "run `make env-example` and commit .env.example"


def test_check_command_reports_drift(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stale = tmp_path / ".env.example"
    stale.write_text(ENV_EXAMPLE.read_text(encoding="utf-8").replace("# SIM_PORT=8765", "# SIM_PORT=1"))
    cmd = [sys.executable, "-m", "kalshi_analytics.config_docs", "env-example", "--check"]
    assert subprocess.run([*cmd, str(stale)], capture_output=True, timeout=60, check=False).returncode == 1
    assert subprocess.run([*cmd, str(ENV_EXAMPLE)], capture_output=True, timeout=60, check=False).returncode == 0


def test_lists_every_setting_with_default_and_meaning() -> None:
    text = config_docs.env_example()
    lines = text.splitlines()
    for name, info in Settings.model_fields.items():
        var = config_docs.env_name(name, info)
        [at] = [i for i, line in enumerate(lines) if line.startswith(f"# {var}=")]
        default = config_docs.default_text(name, info)
        assert lines[at] == f"# {var}={default}"
        start = at
        while lines[start - 1].startswith("## "):
            start -= 1
        paragraph = " ".join(line.removeprefix("## ") for line in lines[start:at])
        assert info.description
        assert paragraph.startswith(info.description.strip().rstrip("."))
        assert paragraph.endswith(f"Default: {default or 'unset'}.")
    # Nothing of this machine: the data folder's default is shown generically.
    assert "/home/" not in text
    assert "/root" not in text
    assert "/tmp" not in text


def test_the_values_shown_are_accepted_by_settings(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Uncommenting every line gives the defaults back (the file's values parse as the settings they name)."""
    monkeypatch.chdir(tmp_path)
    for name, info in Settings.model_fields.items():  # only the file's values, not this shell's settings
        monkeypatch.delenv(config_docs.env_name(name, info), raising=False)
    env = {}
    for line in config_docs.env_example().splitlines():
        if line.startswith("# ") and "=" in line and line[2:3].isupper() and " " not in line[2:].split("=")[0]:
            key, value = line[2:].split("=", 1)
            if (
                value
                and key != "KALSHI_ANALYTICS_DATA_DIR"
                and key in {config_docs.env_name(n, f) for n, f in Settings.model_fields.items()}
            ):
                env[key] = value
    for key in list(env):
        monkeypatch.setenv(key, env[key])
    from_file = Settings()
    defaults = Settings.model_construct()
    for name in Settings.model_fields:
        if name == "data_dir":
            continue
        assert getattr(from_file, name) == getattr(defaults, name), name


def test_a_setting_without_description_is_refused() -> None:
    class Bad(Settings):
        undocumented: int = Field(1)

    with pytest.raises(ValueError, match="undocumented has no description"):
        config_docs.describe("undocumented", Bad.model_fields["undocumented"])


# ----------------------------------------------------------------------- docs/configuration.md (the reference)
REFERENCE = REPO_ROOT / "docs" / "configuration.md"


def test_the_reference_is_current() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == config_docs.reference(), "run `make env-example`"


def test_the_reference_has_a_row_per_setting_with_its_default_values_and_meaning() -> None:
    text = config_docs.reference()
    rows = {line.split(" | ")[0].strip("| `"): line for line in text.splitlines() if line.startswith("| `")}
    for name, info in Settings.model_fields.items():
        row = rows[config_docs.env_name(name, info)]
        assert info.description
        assert row.rstrip(" |").endswith(info.description.strip().replace("|", "\\|"))
    assert "KALSHI_ANALYTICS_DATA_DIR" in rows  # the alias, not the field name
    assert "| `POLL_INTERVAL_SECONDS` | `5` | number, > 0, ≤ 3600 |" in text
    assert "| `KALSHI_ENV` | `sim` | `prod` \\| `demo` \\| `sim` |" in text
    assert "| `API_RATE_LIMIT_ENABLED` | `true` | true/false |" in text
    assert "/root" not in text
    assert "/home/" not in text


def test_reference_check_reports_drift(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stale = tmp_path / "configuration.md"
    stale.write_text(config_docs.reference().replace("POLL_INTERVAL_SECONDS", "POLL_SECONDS"), encoding="utf-8")
    assert config_docs.main(["reference", "--check", str(stale)]) == 1
    assert config_docs.main(["reference", "--check", str(REFERENCE)]) == 0
