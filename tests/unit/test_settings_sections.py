"""Each concern's settings: defaults, every key of a sample flowdesk.yaml, frozen, ${env:} resolved when read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.cli import build_parser
from engine.commands.serve_options import resolve_serve_options
from engine.commands.worker import resolve_options
from engine.errors import ConfigError
from engine.runtime.connect import TLSSettings
from engine.server.options import ServeOptions
from engine.settings import Settings
from engine.settings_sections import DEFAULT_ACCOUNT, TLSFiles

SAMPLE = """\
server: {host: 0.0.0.0, port: 9000, public_url: "${env:FD_PUBLIC_URL}"}
data_dir: /var/lib/flowdesk
flows_dir: /srv/flows
database: {url: "${env:FD_DB_URL}"}
temporal:
  address: "${env:FD_TEMPORAL}"
  namespace: support
  task_queue: support-queue
  embedded_port: 7300
  ui_port: 8300
  tls: {ca_file: certs/ca.pem, cert_file: certs/client.pem, key_file: certs/client.key, server_name: temporal.internal}
log: {level: debug, format: json}
limits: {message_max_chars: 1200}
channels:
  webchat:
    identity_secret: "${env:FD_IDENTITY}"
    secret: "${env:FD_VISITOR_KEY}"
    rate_per_second: 2.5
    burst: 9
  telegram:
    bot_token: "${env:TELEGRAM_BOT_TOKEN}"
    api_base: https://api.telegram.org
  whatsapp:
    api_base: https://graph.facebook.com
    accounts:
      sales: {phone_number_id: "111", access_token: "${env:WA_SALES}"}
      support: {phone_number_id: "222", access_token: "${env:WA_SUPPORT}", api_base: http://127.0.0.1:9999}
ai_profiles:
  default: {provider: openai, api_key: "${env:OPENAI_API_KEY}"}
"""

ENVIRON = {
    "FD_PUBLIC_URL": "https://support.example.com",
    "FD_DB_URL": "postgresql+psycopg://db/flowdesk",
    "FD_TEMPORAL": "temporal.internal:7233",
    "FD_IDENTITY": "identity-key",
    "FD_VISITOR_KEY": "visitor-key",
}


@pytest.fixture(name="fx_sample")
def fixture_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "flowdesk.yaml").write_text(SAMPLE, encoding="utf-8")
    return Settings.load(tmp_path / "flowdesk.yaml", environ={})


def test_defaults_without_a_file() -> None:
    settings = Settings.from_mapping({}, environ={})
    assert (settings.server.host, settings.server.port, settings.server.public_url) == ("127.0.0.1", 8000, "")
    temporal = settings.temporal
    assert (temporal.address, temporal.namespace, temporal.task_queue) == ("", "default", "flowdesk")
    assert (temporal.embedded_port, temporal.ui_port, temporal.tls) == (7233, 8233, TLSFiles())
    assert settings.store.database_url == ""
    assert (settings.store.data_dir, settings.store.flows_dir) == (Path(".flowdesk"), Path("flows"))
    assert (settings.log.level, settings.log.format) == ("info", "text")
    webchat = settings.webchat
    assert (webchat.rate_per_second, webchat.burst, webchat.message_max_chars) == (1.0, 5, 4000)
    assert (webchat.identity_secret, webchat.secret) == (None, None)
    assert settings.channels.kinds == {} and settings.channels.accounts("telegram") == {}
    assert settings.ai.profiles == {}


def test_every_key_of_the_sample_is_read(fx_sample: Settings, tmp_path: Path) -> None:
    server, temporal, store, webchat = fx_sample.server, fx_sample.temporal, fx_sample.store, fx_sample.webchat
    assert (server.host, server.port, server.public_url) == ("0.0.0.0", 9000, "https://support.example.com")
    assert (temporal.address, temporal.namespace, temporal.task_queue) == (
        "temporal.internal:7233",
        "support",
        "support-queue",
    )
    assert (temporal.embedded_port, temporal.ui_port) == (7300, 8300)
    # TLS files are relative to flowdesk.yaml's directory, not to where the command runs.
    assert temporal.tls == TLSFiles(
        ca_file=tmp_path / "certs/ca.pem",
        cert_file=tmp_path / "certs/client.pem",
        key_file=tmp_path / "certs/client.key",
        server_name="temporal.internal",
    )
    assert store.database_url == "postgresql+psycopg://db/flowdesk"
    assert (store.data_dir, store.flows_dir) == (Path("/var/lib/flowdesk"), Path("/srv/flows"))
    assert (fx_sample.log.level, fx_sample.log.format) == ("debug", "json")
    assert (webchat.rate_per_second, webchat.burst, webchat.message_max_chars) == (2.5, 9, 1200)
    assert (webchat.identity_secret, webchat.secret) == ("identity-key", "visitor-key")
    assert fx_sample.ai.profiles == {"default": {"provider": "openai", "api_key": "${env:OPENAI_API_KEY}"}}


def test_sections_are_frozen_and_built_once(fx_sample: Settings) -> None:
    assert fx_sample.temporal is fx_sample.temporal
    for section in (fx_sample.server, fx_sample.temporal, fx_sample.store, fx_sample.log, fx_sample.webchat):
        field = dataclasses.fields(section)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(section, field, "changed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        fx_sample.channels.kinds = {}  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fx_sample.ai.profiles = {}  # type: ignore[misc]


def test_secrets_stay_references_until_read(fx_sample: Settings) -> None:
    # A section's repr (in a log line, a traceback) names the variable, never its value.
    assert "identity-key" not in repr(fx_sample.webchat) and "${env:FD_IDENTITY}" in repr(fx_sample.webchat)
    assert "postgresql" not in repr(fx_sample.store)


def test_temporal_address_is_resolved_from_the_environment_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.from_mapping({"temporal": {"address": "${env:FD_TEMPORAL}"}}, environ={})
    monkeypatch.setenv("FD_TEMPORAL", "cluster.example:7233")
    assert settings.temporal.address == "cluster.example:7233"
    monkeypatch.delenv("FD_TEMPORAL")
    with pytest.raises(ConfigError, match=r"environment variable FD_TEMPORAL is not set"):
        _ = settings.temporal.address
    # The rest of the section does not need the variable.
    assert settings.temporal.namespace == "default"


def test_flowdesk_variables_reach_the_sections() -> None:
    environ = {"FLOWDESK_TEMPORAL_ADDRESS": "env.example:7233", "FLOWDESK_PORT": "9100", "FLOWDESK_LOG_FORMAT": "json"}
    settings = Settings.from_mapping({"temporal": {"address": "file.example:7233"}}, environ=environ)
    assert (settings.temporal.address, settings.server.port, settings.log.format) == ("env.example:7233", 9100, "json")


def test_channel_keys_at_the_top_are_the_default_account(fx_sample: Settings) -> None:
    assert fx_sample.channels.accounts("telegram") == {
        DEFAULT_ACCOUNT: {"bot_token": "${env:TELEGRAM_BOT_TOKEN}", "api_base": "https://api.telegram.org"}
    }
    assert set(fx_sample.channels.kinds) == {"webchat", "telegram", "whatsapp"}


def test_channel_accounts_share_the_keys_beside_them(fx_sample: Settings) -> None:
    accounts = fx_sample.channels.accounts("whatsapp")
    assert accounts == {
        "sales": {
            "api_base": "https://graph.facebook.com",
            "phone_number_id": "111",
            "access_token": "${env:WA_SALES}",
        },
        # an account's own key wins over the shared one
        "support": {"api_base": "http://127.0.0.1:9999", "phone_number_id": "222", "access_token": "${env:WA_SUPPORT}"},
    }


def test_accounts_that_are_not_a_mapping_are_refused() -> None:
    settings = Settings.from_mapping(
        {"channels": {"sms": {"accounts": ["one", "two"]}, "telegram": {"bot_token": "t"}}}, environ={}
    )
    with pytest.raises(ConfigError, match=r"channels\.sms\.accounts must map account names"):
        settings.channels.accounts("sms")
    # one channel's mistake does not hide the others
    assert settings.channels.accounts("telegram") == {DEFAULT_ACCOUNT: {"bot_token": "t"}}


def test_a_webchat_rate_that_is_not_a_number_names_the_key() -> None:
    settings = Settings.from_mapping({"channels": {"webchat": {"rate_per_second": "fast"}}}, environ={})
    with pytest.raises(ConfigError, match=r"channels\.webchat\.rate_per_second must be a number, not 'fast'"):
        _ = settings.webchat


def _serve(settings: Settings, *argv: str) -> ServeOptions:
    return resolve_serve_options(build_parser(["serve"]).parse_args(["serve", *argv]), settings)


def test_serve_options_from_the_sample(fx_sample: Settings, tmp_path: Path) -> None:
    assert _serve(fx_sample) == ServeOptions(
        host="0.0.0.0",
        port=9000,
        data_dir=Path("/var/lib/flowdesk"),
        flows_dir=Path("/srv/flows"),
        database_url="postgresql+psycopg://db/flowdesk",
        temporal_address="temporal.internal:7233",
        namespace="support",
        task_queue="support-queue",
        tls=TLSSettings(
            ca_file=tmp_path / "certs/ca.pem",
            cert_file=tmp_path / "certs/client.pem",
            key_file=tmp_path / "certs/client.key",
            server_name="temporal.internal",
        ),
        embedded_port=7300,
        temporal_ui_port=8300,
        log_level="debug",
        log_format="json",
        public_url="https://support.example.com",
    )


def test_serve_options_by_default(tmp_path: Path) -> None:
    assert _serve(Settings.from_mapping({}, environ={})) == ServeOptions(
        host="127.0.0.1",
        port=8000,
        data_dir=Path(".flowdesk"),
        flows_dir=Path("flows"),
        database_url=f"sqlite:///{(Path('.flowdesk') / 'flowdesk.db').absolute()}",
        temporal_address="",
        namespace="default",
        task_queue="flowdesk",
        tls=None,
        embedded_port=7233,
        temporal_ui_port=8233,
        log_level="info",
        log_format="text",
        public_url="",
    )


def test_serve_flags_win_and_need_no_variable(fx_sample: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FD_TEMPORAL")
    options = _serve(
        fx_sample,
        *("--host", "127.0.0.2", "--data-dir", "/tmp/fd", "--flows-dir", "here", "--temporal-address", "t.local:1"),
        *("--namespace", "other", "--tls-ca", "ca.pem", "--log-level", "warning", "--log-format", "text"),
    )
    assert (options.host, options.data_dir, options.flows_dir) == ("127.0.0.2", Path("/tmp/fd"), Path("here"))
    assert (options.temporal_address, options.namespace, options.log_level, options.log_format) == (
        "t.local:1",
        "other",
        "warning",
        "text",
    )
    assert options.tls is not None and options.tls.ca_file == Path("ca.pem")


def test_worker_options_from_the_sample(fx_sample: Settings) -> None:
    args = build_parser(["worker"]).parse_args(["worker"])
    options = resolve_options(args, fx_sample)
    assert (options.address, options.namespace, options.task_queue) == (
        "temporal.internal:7233",
        "support",
        "support-queue",
    )
    assert options.database_url == "postgresql+psycopg://db/flowdesk"
    assert options.flows_dir == Path("/srv/flows")
    assert options.ai_profiles == fx_sample.ai.profiles
    assert options.channel_settings == fx_sample.data["channels"]
