"""``flowdesk try``: chatting with a flow through piped input, as a script (or a person) would."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Flowdesk = Callable[..., subprocess.CompletedProcess[str]]

DESK = """\
flow: desk
steps:
  greet:
    say: "Hi {{ contact.name or 'there' }}!"
    next: opening
  opening:
    wait: message  # takes the message that opened the conversation
    next: menu
  menu:
    ask: What do you need?
    choices: [Order status, Human, Survey]
    save_as: topic
    next: route
  route:
    switch:
      - if: "vars.topic == 'Order status'"
        goto: order
      - if: "vars.topic == 'Survey'"
        goto: survey
    default: human
  order:
    ask: Order number?
    save_as: order_id
    next: lookup
  lookup:
    http: {url: "https://shop.example/orders/{{ vars.order_id }}"}
    save_as: order
    on_error: sorry
    next: status
  status:
    say: "Order {{ vars.order_id }} is {{ vars.order.status }}."
    next: listen
  sorry:
    say: I cannot look that up right now.
    next: listen
  survey:
    call: rating
    save_as: survey
    next: thanks
  thanks:
    say: "Thanks for the {{ vars.survey.vars.stars }} stars."
    next: listen
  human:
    say: Connecting you...
    handoff: {queue: tier1, timeout: 10m}
    on_timeout: sorry
    next: listen
  listen:
    wait: message
    timeout: 30m
    on_timeout: close
    next: menu
  close:
    say: Closing this chat.
    end: resolved
"""

RATING = """\
flow: rating
steps:
  stars:
    ask: How many stars (1-5)?
    expect: "answer is matching('^[1-5]$')"
    save_as: stars
"""


@pytest.fixture(name="fx_desk")
def fixture_desk(tmp_path: Path) -> Path:
    (tmp_path / "rating.yaml").write_text(RATING, encoding="utf-8")
    (tmp_path / "notes.yaml").write_text("just: data\n", encoding="utf-8")  # not a flow: ignored
    path = tmp_path / "desk.yaml"
    path.write_text(DESK, encoding="utf-8")
    return path


def test_a_conversation_with_steps_and_choices(fx_desk: Path, fx_flowdesk: Flowdesk) -> None:
    done = fx_flowdesk("try", str(fx_desk), "--contact-name", "Ann", stdin="hello\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "  → greet (say)",
        "bot: Hi Ann!",
        "  → opening (wait)",
        "  → menu (ask)",
        "bot: What do you need?",
        "     1. Order status",
        "     2. Human",
        "     3. Survey",
    ]
    assert done.stderr == ""


def test_quiet_shows_only_messages(fx_desk: Path, fx_flowdesk: Flowdesk) -> None:
    done = fx_flowdesk("try", str(fx_desk), "--quiet", stdin="hello\nwhat?\n2\n")
    lines = done.stdout.splitlines()
    assert not [line for line in lines if "→" in line]
    # "what?" is not a choice: the question is asked again; "2" picks Human
    assert lines.count("bot: What do you need?") == 2
    assert "bot: Connecting you..." in lines


def test_http_without_a_mock_takes_the_error_path(fx_desk: Path, fx_flowdesk: Flowdesk) -> None:
    done = fx_flowdesk("try", str(fx_desk), stdin="hi\n1\n1234567\n")
    lines = done.stdout.splitlines()
    fault = [line for line in lines if line.startswith("  ! ")]
    assert fault == [
        "  ! fault http_error at step 'lookup': no mock for http step 'lookup'; taking its error path "
        "(to answer it, pass --mock FILE with `http: {lookup: <body>}`)"
    ]
    assert lines[lines.index(fault[0]) + 1 :] == [
        "  → sorry (say)",
        "bot: I cannot look that up right now.",
        "  → listen (wait)",
    ]


def test_mock_file_answers_http(fx_desk: Path, tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    (tmp_path / "mock.yaml").write_text("http:\n  lookup: {status: shipped}\n", encoding="utf-8")
    done = fx_flowdesk("try", str(fx_desk), "--quiet", "--mock", "mock.yaml", stdin="hi\n1\n1234567\n")
    assert done.stdout.splitlines()[-1] == "bot: Order 1234567 is shipped."


def test_bad_mock_file(fx_desk: Path, tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    (tmp_path / "mock.yaml").write_text("htp: {}\n", encoding="utf-8")
    done = fx_flowdesk("try", str(fx_desk), "--mock", "mock.yaml", stdin="hi\n")
    assert done.returncode == 1
    assert "error: invalid mock file mock.yaml:" in done.stderr
    assert "mock.yaml:1:1: FD111 error: unknown key 'htp'" in done.stderr


def test_wait_fires_the_timeout_and_the_conversation_ends(fx_desk: Path, fx_flowdesk: Flowdesk) -> None:
    done = fx_flowdesk("try", str(fx_desk), "--quiet", stdin="hi\n1\n42\n/wait 29m\n/wait 1m\nhello?\n")
    lines = done.stdout.splitlines()
    assert lines[-3:] == [
        "bot: Closing this chat.",
        "(conversation ended: resolved; /restart to begin again, /quit to leave)",
        "(the conversation has ended; /restart to begin again)",
    ]


def test_playing_the_agent(fx_desk: Path, fx_flowdesk: Flowdesk) -> None:
    script = "hi\n/agent accept\nHuman\n/agent accept\n/agent say Hello, Bob here.\n/agent resolve\n/agent resolve\n"
    done = fx_flowdesk("try", str(fx_desk), "--quiet", stdin=script)
    assert done.stdout.splitlines()[5:] == [
        "(the conversation is not handed off to an agent; nothing to do)",
        "bot: Connecting you...",
        "(handed off to queue 'tier1': /agent accept, /agent say TEXT, /agent resolve, or /wait)",
        "system: agent-1 joined the conversation.",
        "agent: Hello, Bob here.",
        "(the conversation is not handed off to an agent; nothing to do)",
    ]


def test_state_and_restart(fx_desk: Path, fx_flowdesk: Flowdesk) -> None:
    done = fx_flowdesk("try", str(fx_desk), "--quiet", stdin="hi\n/state\n/restart\nhi again\n")
    lines = done.stdout.splitlines()
    assert "step: menu" in lines and "waiting_for: message" in lines and "status: active" in lines
    assert "(restarted: a new conversation begins with your next message)" in lines
    assert lines[-5:-3] == ["bot: Hi there!", "bot: What do you need?"]


def test_call_reaches_a_flow_in_the_same_directory(fx_desk: Path, fx_flowdesk: Flowdesk) -> None:
    done = fx_flowdesk("try", str(fx_desk), stdin="hi\nSurvey\n9\n4\n")
    lines = done.stdout.splitlines()
    assert "  → rating/stars (ask)" in lines
    assert lines.count("bot: How many stars (1-5)?") == 2  # "9" is asked again
    assert "bot: Thanks for the 4 stars." in lines


def test_quit_stops_reading(fx_desk: Path, fx_flowdesk: Flowdesk) -> None:
    done = fx_flowdesk("try", str(fx_desk), "--quiet", stdin="/quit\nhello\n")
    assert done.returncode == 0 and done.stdout == ""


def test_usage_help_and_unknown_commands(fx_desk: Path, fx_flowdesk: Flowdesk) -> None:
    done = fx_flowdesk("try", str(fx_desk), "--quiet", stdin="/wait soon\n/agent dance\n/nope\n/help\n")
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        "usage: /wait DURATION, e.g. /wait 30s, /wait 10m, /wait 2h",
        "usage: /agent accept | /agent say TEXT | /agent resolve",
        "unknown command /nope; /help lists the commands (start with // to send a '/')",
    ]
    assert "  /restart             start a new conversation" in lines


def test_flow_with_errors_prints_diagnostics(tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    (tmp_path / "broken.yaml").write_text("flow: broken\nsteps:\n  a: {say: hi, next: nowhere}\n", encoding="utf-8")
    done = fx_flowdesk("try", "broken.yaml", stdin="hi\n")
    assert done.returncode == 1
    assert done.stdout.startswith("broken.yaml:3:22: FD201 error: step 'nowhere' is not defined")
    assert "broken.yaml: 1 error; fix them to chat with this flow" in done.stderr


def test_broken_neighbour_is_only_a_note(fx_desk: Path, tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    (tmp_path / "other.yaml").write_text("flow: other\nsteps: {}\n", encoding="utf-8")
    done = fx_flowdesk("try", str(fx_desk), "--quiet", stdin="hi\n")
    assert done.returncode == 0
    assert f"note: {tmp_path / 'other.yaml'} has errors and is not loaded" in done.stderr
    assert "bot: Hi there!" in done.stdout


def test_missing_flow_file(fx_flowdesk: Flowdesk) -> None:
    done = fx_flowdesk("try", "nope.yaml")
    assert done.returncode == 1
    assert done.stderr == "error: nope.yaml is not a file (flowdesk try takes one flow file)\n"
