"""``flowdesk channels list|setup`` as an operator runs them: what is served, at which URL, what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine.cli import run
from tests.vendors.telegram import SECRET, TOKEN, TelegramEmulator

SETTINGS = {
    "server": {"public_url": "https://support.example.com/"},
    "channels": {
        "telegram": {"bot_token": "${env:FD_TEST_TG_TOKEN}", "secret_token": "${env:FD_TEST_TG_SECRET}"},
        "whatsapp": {
            "accounts": {
                "sales": {"phone_number_id": "1", "access_token": "t", "app_secret": "a", "verify_token": "v"},
                "support": {"phone_number_id": "2", "access_token": "t"},
            }
        },
        "api": {"accounts": {"crm": {"secret": "x" * 32, "callback_url": "https://"}}},
    },
}


def _write(tmp_path: Path, settings: dict[str, object]) -> Path:
    file = tmp_path / "flowdesk.yaml"
    file.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return file


def _listed(capsys: pytest.CaptureFixture[str], file: Path) -> tuple[int, dict[str, dict[str, object]]]:
    status = run(["channels", "list", "--settings", str(file), "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    return status, {row["channel"]: row for row in rows}


def test_list_says_what_each_account_lacks_and_where_its_vendor_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FD_TEST_TG_TOKEN", TOKEN)
    monkeypatch.delenv("FD_TEST_TG_SECRET", raising=False)
    status, rows = _listed(capsys, _write(tmp_path, SETTINGS))
    assert status == 1  # something configured cannot be served
    assert rows["webchat"]["state"] == "ready"
    assert rows["webchat"]["url"] == "https://support.example.com/ws/chat"
    assert rows["whatsapp:sales"] == {
        "channel": "whatsapp:sales",
        "state": "ready",
        "url": "https://support.example.com/webhooks/whatsapp/sales",
        "problems": [],
    }
    assert rows["telegram"]["state"] == "incomplete"
    assert rows["telegram"]["url"] == "https://support.example.com/webhooks/telegram"
    assert rows["telegram"]["problems"] == [
        "channels.telegram.secret_token: environment variable FD_TEST_TG_SECRET is not set"
    ]
    assert rows["whatsapp:support"]["problems"] == [
        "channels.whatsapp.accounts.support.app_secret is not set",
        "channels.whatsapp.accounts.support.verify_token is not set",
    ]
    assert rows["api:crm"]["state"] == "broken"
    assert "callback_url" in str(rows["api:crm"]["problems"])


def test_list_is_clean_when_everything_is_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FD_TEST_TG_TOKEN", TOKEN)
    monkeypatch.setenv("FD_TEST_TG_SECRET", SECRET)
    settings = {"channels": {"telegram": SETTINGS["channels"]["telegram"]}}  # type: ignore[index]
    status = run(["channels", "list", "--settings", str(_write(tmp_path, settings))])
    out, err = capsys.readouterr()
    assert status == 0
    assert "telegram  ready       http://127.0.0.1:8000/webhooks/telegram" in out
    assert "vendors need a public https URL" in err  # no public_url: the local address is only a hint


def test_a_secret_never_reaches_the_listing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FD_TEST_TG_TOKEN", TOKEN)
    monkeypatch.setenv("FD_TEST_TG_SECRET", SECRET)
    for format_ in ("text", "json"):
        run(["channels", "list", "--settings", str(_write(tmp_path, SETTINGS)), "--format", format_])
        out, err = capsys.readouterr()
        for secret in (TOKEN, SECRET, "x" * 32):
            assert secret not in out + err


def test_setup_registers_the_telegram_webhook_with_its_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FD_TEST_TG_TOKEN", TOKEN)
    monkeypatch.setenv("FD_TEST_TG_SECRET", SECRET)
    with TelegramEmulator() as telegram:
        settings = {"channels": {"telegram": {**SETTINGS["channels"]["telegram"], "api_base": telegram.api_base}}}  # type: ignore[index]
        file = _write(tmp_path, settings)
        status = run(
            ["channels", "setup", "telegram", "--settings", str(file), "--public-url", "https://help.example.com"]
        )
        out = capsys.readouterr().out
        registered = telegram.calls_of("setWebhook")
    assert status == 0, out
    assert len(registered) == 1
    params = registered[0].params
    assert params["url"] == "https://help.example.com/webhooks/telegram"
    assert params["secret_token"] == SECRET
    assert "https://help.example.com/webhooks/telegram" in out
    assert SECRET not in out and TOKEN not in out


def test_setup_refuses_what_it_cannot_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FD_TEST_TG_TOKEN", TOKEN)
    monkeypatch.delenv("FD_TEST_TG_SECRET", raising=False)
    file = _write(tmp_path, SETTINGS)
    # The secret is missing: nothing is registered, and it says which setting.
    assert run(["channels", "setup", "telegram", "--settings", str(file)]) == 1
    assert "FD_TEST_TG_SECRET is not set" in capsys.readouterr().err
    monkeypatch.setenv("FD_TEST_TG_SECRET", SECRET)
    # A plain-http address: vendors would not call it.
    assert run(["channels", "setup", "telegram", "--settings", str(file), "--public-url", "http://x.example"]) == 2
    assert "https" in capsys.readouterr().err
    # WhatsApp's webhook is entered in Meta's console: the URL to enter is printed.
    assert run(["channels", "setup", "whatsapp", "--account", "sales", "--settings", str(file)]) == 2
    assert "https://support.example.com/webhooks/whatsapp/sales" in capsys.readouterr().err
    assert run(["channels", "setup", "sms", "--settings", str(file)]) == 2
    assert "no channels.sms" in capsys.readouterr().err
