"""``serve``'s port options reach what the node runs with, over settings and the environment."""

from __future__ import annotations

import pytest

from engine.cli import build_parser
from engine.commands.serve_options import resolve_serve_options
from engine.errors import ConfigError
from engine.server.options import ServeOptions
from engine.settings import Settings

SETTINGS = {"server": {"port": 9000}, "temporal": {"embedded_port": 7300, "ui_port": 8300}}


def _options(*argv: str, environ: dict[str, str] | None = None) -> ServeOptions:
    args = build_parser(["serve"]).parse_args(["serve", *argv])
    return resolve_serve_options(args, Settings.from_mapping(SETTINGS, environ=environ or {}))


def test_flags_win_over_settings() -> None:
    options = _options("--port", "9100", "--temporal-port", "7400", "--temporal-ui-port", "8400")
    assert (options.port, options.embedded_port, options.temporal_ui_port) == (9100, 7400, 8400)


def test_settings_apply_without_flags() -> None:
    options = _options()
    assert (options.port, options.embedded_port, options.temporal_ui_port) == (9000, 7300, 8300)


def test_environment_sets_the_temporal_ports() -> None:
    environ = {"FLOWDESK_TEMPORAL_PORT": "7500", "FLOWDESK_TEMPORAL_UI_PORT": "8500"}
    options = _options(environ=environ)
    assert (options.embedded_port, options.temporal_ui_port) == (7500, 8500)


def test_port_zero_means_any_free_port() -> None:
    options = _options("--temporal-port", "0", "--temporal-ui-port", "0")
    assert (options.embedded_port, options.temporal_ui_port) == (0, 0)


def test_out_of_range_temporal_port_is_refused() -> None:
    with pytest.raises(ConfigError, match="70000"):
        _options("--temporal-ui-port", "70000")


def test_help_names_the_port_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser(["serve"]).parse_args(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--temporal-port" in out and "--temporal-ui-port" in out
