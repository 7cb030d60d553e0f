"""Which channels a node or worker runs, built from the settings contract."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from engine.channels.host import ChannelConfig
from engine.channels.registry import CHANNELS, build_channels, register_channel
from engine.channels.types import Capabilities, OutboundMessage, Receipt


class Recorder:
    """A channel that remembers how it was configured."""

    name = "recorder"
    capabilities = Capabilities()

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config

    async def send(self, message: OutboundMessage) -> Receipt:
        return Receipt("sent")


@pytest.fixture(autouse=True)
def _registered() -> Iterator[None]:
    register_channel("recorder")(Recorder)
    yield
    CHANNELS._registered.pop("recorder", None)
    CHANNELS._registered.pop("fragile", None)


def test_each_account_is_one_channel_named_by_its_address_with_its_secrets_resolved() -> None:
    settings = {"recorder": {"token": "${env:REC_TOKEN}", "accounts": {"sales": {}, "support": {"token": "plain"}}}}
    channels: dict[str, Any] = build_channels(settings, environ={"REC_TOKEN": "t0k3n"})
    # Keys beside `accounts:` are shared by every account; an account's own keys win.
    assert {"recorder:sales", "recorder:support"} <= set(channels)
    assert channels["recorder:sales"].config.params == {"token": "t0k3n"}
    assert channels["recorder:support"].config.params == {"token": "plain"}
    assert channels["recorder:sales"].config.address == "recorder:sales"


def test_an_account_turned_off_is_left_out() -> None:
    channels = build_channels({"recorder": {"accounts": {"a": {"enabled": False}, "b": {}}}}, environ={})
    assert "recorder:a" not in channels and "recorder:b" in channels


def test_a_missing_secret_or_a_failing_factory_is_logged_by_address_and_the_rest_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @register_channel("fragile")
    def fragile(config: ChannelConfig) -> Recorder:
        raise RuntimeError("vendor SDK missing")

    caplog.set_level(logging.ERROR, logger="engine.channels.registry")
    channels = build_channels({"recorder": {"token": "${env:NOT_SET_ANYWHERE}"}, "fragile": {}}, environ={})
    assert "recorder" not in channels and "fragile" not in channels
    unset = "channels.recorder.token: environment variable NOT_SET_ANYWHERE is not set"
    assert f"channel 'recorder' not started: {unset}" in caplog.text
    assert "channel 'fragile' failed to start: RuntimeError: vendor SDK missing" in caplog.text


def test_an_unknown_kind_in_the_settings_is_an_error_naming_the_known_ones(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="engine.channels.registry")
    build_channels({"telegrm": {}}, environ={})
    assert "unknown channel 'telegrm'" in caplog.text and "webchat" in caplog.text
