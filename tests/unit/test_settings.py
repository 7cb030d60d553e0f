"""Settings: flowdesk.yaml validated by its schema, FLOWDESK_* overrides, ${env:NAME} left for later."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.resources import load_schema
from engine.settings import ENV_VARIABLES, Settings, env_overrides, resolve_env_ref

GOOD = """\
brand: Acme Shop
values: {shop_api: "https://shop.example/api"}
database: {url: "${env:SHOP_DB_URL}"}
temporal: {address: "temporal.internal:7233", namespace: support}
log: {level: info}
limits: {max_steps_per_turn: 20}
business_hours:
  office:
    timezone: Europe/Paris
    weekly: {mon: ["09:00-17:00"]}
    holidays: ["2026-12-25"]
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.load(environ={})
    assert settings.file is None
    assert settings.brand == "Flowdesk"
    assert settings.flow_settings().scope() == {"brand": "Flowdesk"}
    assert settings.limits().max_steps_per_turn == 100


def test_default_file_is_read_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "flowdesk.yaml", GOOD)
    monkeypatch.chdir(tmp_path)
    settings = Settings.load(environ={})
    assert settings.file == Path("flowdesk.yaml")
    assert settings.brand == "Acme Shop"
    assert settings.get("temporal", "namespace") == "support"
    assert settings.get("server", "port", default=8000) == 8000
    assert settings.limits().max_steps_per_turn == 20


def test_env_references_are_kept_as_written(tmp_path: Path) -> None:
    settings = Settings.load(write(tmp_path / "s.yaml", GOOD), environ={})
    # resolved only where used (inside activities), never here
    assert settings.get("database", "url") == "${env:SHOP_DB_URL}"


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert Settings.load(write(tmp_path / "s.yaml", "# nothing yet\n"), environ={}).brand == "Flowdesk"


def test_named_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"settings file .*nope\.yaml not found"):
        Settings.load(tmp_path / "nope.yaml", environ={})


def test_schema_errors_are_located(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "brnd: Acme\nlog: {level: loud}\n")
    with pytest.raises(ConfigError) as caught:
        Settings.load(path, environ={})
    message = str(caught.value)
    assert f"{path}:1:1: FD111 error: unknown key 'brnd' in the settings" in message
    assert "did you mean 'brand'?" in message
    assert f"{path}:2:14: FD113 error:" in message
    assert "allowed: debug, info, warning, error" in message


def test_yaml_errors_and_non_mappings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FD101"):
        Settings.load(write(tmp_path / "a.yaml", "brand: [unclosed\n"), environ={})
    with pytest.raises(ConfigError, match="settings must be a mapping"):
        Settings.load(write(tmp_path / "b.yaml", "- brand\n"), environ={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    environ = {
        "FLOWDESK_BRAND": "Env Brand",
        "FLOWDESK_DATABASE_URL": "postgresql+psycopg://db/flowdesk",
        "FLOWDESK_TEMPORAL_ADDRESS": "",  # empty: run an embedded Temporal
        "FLOWDESK_LOG_FORMAT": "json",
        "UNRELATED": "x",
    }
    settings = Settings.load(write(tmp_path / "s.yaml", GOOD), environ=environ)
    assert settings.brand == "Env Brand"
    assert settings.get("database", "url") == "postgresql+psycopg://db/flowdesk"
    assert settings.get("temporal") == {"address": "", "namespace": "support"}
    assert settings.get("log") == {"level": "info", "format": "json"}
    assert sorted(o.setting for o in settings.overrides) == ["brand", "database.url", "log.format", "temporal.address"]


def test_environment_alone_creates_sections() -> None:
    settings = Settings.from_mapping({}, environ={"FLOWDESK_DATA_DIR": "/var/lib/fd", "FLOWDESK_LOG_LEVEL": "debug"})
    assert settings.data == {"data_dir": "/var/lib/fd", "log": {"level": "debug"}}


def test_invalid_override_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({}, environ={"FLOWDESK_LOG_LEVEL": "loud", "FLOWDESK_TEMPORAL_ADDRESS": "no port"})
    message = str(caught.value)
    assert "FLOWDESK_LOG_LEVEL='loud':" in message and "allowed: debug, info, warning, error" in message
    assert "FLOWDESK_TEMPORAL_ADDRESS='no port':" in message


def test_env_overrides_lists_only_set_variables() -> None:
    found = env_overrides({"FLOWDESK_FLOWS_DIR": "flows", "FLOWDESK_NOPE": "x"})
    assert [(o.variable, o.path, o.value) for o in found] == [("FLOWDESK_FLOWS_DIR", ("flows_dir",), "flows")]
    assert set(ENV_VARIABLES) == {
        "FLOWDESK_BRAND",
        "FLOWDESK_DATA_DIR",
        "FLOWDESK_FLOWS_DIR",
        "FLOWDESK_DATABASE_URL",
        "FLOWDESK_TEMPORAL_ADDRESS",
        "FLOWDESK_LOG_LEVEL",
        "FLOWDESK_LOG_FORMAT",
        "FLOWDESK_HOST",
        "FLOWDESK_PORT",
        "FLOWDESK_TEMPORAL_PORT",
        "FLOWDESK_TEMPORAL_UI_PORT",
    }


def test_flow_settings_expose_brand_values_and_calendars(tmp_path: Path) -> None:
    flow_settings = Settings.load(write(tmp_path / "s.yaml", GOOD), environ={}).flow_settings()
    assert flow_settings.scope() == {"brand": "Acme Shop", "shop_api": "https://shop.example/api"}
    office = flow_settings.calendars["office"]
    assert office.is_open(datetime(2026, 1, 5, 10, 0, tzinfo=UTC))  # Monday 11:00 in Paris
    assert not office.is_open(datetime(2026, 1, 6, 10, 0, tzinfo=UTC))  # Tuesday: closed


def test_invalid_calendar_names_the_calendar(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "business_hours:\n  night_desk: {timezone: Mars/Olympus}\n")
    settings = Settings.load(path, environ={})  # the schema only checks the shape of the name
    with pytest.raises(ConfigError, match=r"business_hours\.night_desk: unknown time zone 'Mars/Olympus'"):
        settings.flow_settings()


def test_resolve_env_ref() -> None:
    assert resolve_env_ref("${env:TOKEN}", {"TOKEN": "s3cret"}) == "s3cret"
    assert resolve_env_ref("plain text", {}) == "plain text"
    with pytest.raises(ConfigError, match=r"environment variable TOKEN is not set"):
        resolve_env_ref("${env:TOKEN}", {})


def test_the_port_from_the_environment_is_a_number() -> None:
    settings = Settings.from_mapping({}, environ={"FLOWDESK_PORT": "9000", "FLOWDESK_HOST": "0.0.0.0"})
    assert settings.get("server") == {"host": "0.0.0.0", "port": 9000}
    with pytest.raises(ConfigError, match="FLOWDESK_PORT='http'"):
        Settings.from_mapping({}, environ={"FLOWDESK_PORT": "http"})


def test_ai_profiles_carry_the_providers_own_settings() -> None:
    """Besides base_url/api_key/model, a profile holds settings only its provider knows (coze's bot_id)."""
    source = (
        "ai_profiles:\n"
        "  bot:\n"
        "    provider: coze\n"
        "    api_key: ${env:COZE_TOKEN}\n"
        '    bot_id: "7392"\n'
        "    poll_interval: 0.2\n"
    )
    settings = Settings.from_source(source, "flowdesk.yaml", environ={})
    assert settings.get("ai_profiles", "bot", "bot_id") == "7392"
    # a provider setting that looks like a secret reference must be a well-formed one
    broken = source.replace('bot_id: "7392"', "bot_id: ${env:}")
    with pytest.raises(ConfigError, match=r"flowdesk.yaml:\d+:\d+"):
        Settings.from_source(broken, "flowdesk.yaml", environ={})


def _env_table_rows() -> list[str]:
    """The README's table of variables, as ENV_VARIABLES and the schema's descriptions say it."""
    schema = load_schema("settings.schema.json")
    rows = []
    for variable, path in ENV_VARIABLES.items():
        node = schema
        for key in path:
            node = node["properties"][key]
        rows.append(f"| `{variable}` | `{'.'.join(path)}` | {node['description']} |")
    return rows


def test_readme_lists_every_environment_variable() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    listed = [line for line in readme.splitlines() if line.startswith("| `FLOWDESK_")]
    assert listed == _env_table_rows(), "regenerate the README's FLOWDESK_* table from ENV_VARIABLES"
