"""``flowdesk try FLOW``: chat with one flow in the terminal, offline.

The conversation runs through the same interpreter as production, on a clock that
only moves with ``/wait``. AI steps answer from ``--mock`` or the chain's offline
providers; HTTP steps answer only from ``--mock`` (without one they fail and take
their ``on_error`` path, which is worth seeing). Piped input works too: no prompt,
no colours, one line per message, so the command can be scripted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from engine.commands.chat_support import SLASH_HELP, Printer, load_flows, load_mocks, parse_wait
from engine.errors import ConfigError, FlowdeskError
from engine.flow.context import FlowSet, InterpreterContext
from engine.flow.model import CompiledFlow
from engine.flow.public_settings import interpreter_context
from engine.flowtest.offline import OfflineAI, ScriptedHttp
from engine.flowtest.simulate import Simulator, flow_dir
from engine.pipeline.runner import Pipelines
from engine.settings import Settings


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "try",
        help="chat with a flow in the terminal (offline: AI and HTTP from mocks)",
        description=(
            "Chat with FLOW in the terminal. Other flows in its directory are loaded too, so `call` and "
            "`goto_flow` work. Type /help for commands; Ctrl-D quits."
        ),
    )
    parser.add_argument("flow", metavar="FLOW", help="the flow file to chat with")
    parser.add_argument("--settings", metavar="FILE", help="settings file (default: ./flowdesk.yaml if present)")
    parser.add_argument("--contact-name", metavar="N", help="the contact's name (contact.name)")
    parser.add_argument("--channel", metavar="C", default="cli", help="channel of the conversation (default: cli)")
    parser.add_argument(
        "--mock", metavar="FILE", help="YAML like a test's `mock:`: {ai: {step: reply}, http: {step: body}}"
    )
    parser.add_argument("--quiet", action="store_true", help="show only messages and faults, not the steps run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        settings = Settings.load(args.settings)
        public = settings.public()
        mocks = load_mocks(Path(args.mock)) if args.mock else {}
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    flows = load_flows(Path(args.flow), quiet=args.quiet)
    if flows is None:
        return 1
    flow, others = flows
    ctx = interpreter_context(FlowSet([flow, *others]), public)
    contact = {"name": args.contact_name} if args.contact_name else {}
    printer = Printer(sys.stdout, color=interactive, quiet=args.quiet)
    session = ChatSession(
        ctx,
        flow,
        mocks=mocks,
        contact=contact,
        channel=args.channel,
        printer=printer,
        pipelines=Pipelines(word_lists=settings.word_lists()),
    )
    if interactive:
        printer.info(f"chatting with flow {flow.name!r} ({flow.file}); /help for commands, Ctrl-D to quit")
    for line in _lines(sys.stdin, interactive):
        if not session.handle(line):
            break
    return 0


def _lines(stream: TextIO, interactive: bool) -> Iterator[str]:
    if not interactive:
        for line in stream:
            yield line.rstrip("\r\n")
        return
    while True:
        try:
            yield input("you> ")
        except EOFError:
            print()
            return


class ChatSession:
    """One conversation with a flow, driven by lines a person types."""

    def __init__(
        self,
        ctx: InterpreterContext,
        flow: CompiledFlow,
        *,
        mocks: dict[str, Any],
        contact: dict[str, Any],
        channel: str,
        printer: Printer,
        pipelines: Pipelines | None = None,
    ) -> None:
        self.ctx = ctx
        self.pipelines = pipelines or Pipelines()
        self.flow = flow
        self.mocks = mocks
        self.contact = contact
        self.channel = channel
        self.out = printer
        self.restart()

    def restart(self) -> None:
        """A fresh conversation (and fresh mocks) on the same flow."""
        self.ai = OfflineAI(self.ctx.flows, mocks=self.mocks.get("ai"), base_dir=flow_dir(self.flow))
        self.http = ScriptedHttp(self.mocks.get("http"))
        self.sim = Simulator(
            self.ctx,
            self.flow,
            ai=self.ai,
            http=self.http,
            contact=self.contact,
            channel=self.channel,
            start=datetime.now(UTC).replace(microsecond=0),
            conversation_id="try-1",
            pipelines=self.pipelines,
        )

    def handle(self, line: str) -> bool:
        """Act on one typed line; ``False`` when the person wants to leave."""
        text = line.strip()
        if not text:
            return True
        if text.startswith("/") and not text.startswith("//"):
            return self.command(text)
        # `//text` sends `/text` literally.
        self.step(lambda: self.sim.user(text[1:] if text.startswith("//") else text))
        return True

    def command(self, text: str) -> bool:
        name, _, rest = text.partition(" ")
        rest = rest.strip()
        if name in ("/quit", "/exit"):
            return False
        if name == "/help":
            self.out.info(SLASH_HELP)
        elif name == "/restart":
            self.restart()
            self.out.info("(restarted: a new conversation begins with your next message)")
        elif name == "/state":
            view = self.sim.state.public_view()
            self.out.plain(yaml.safe_dump(view, sort_keys=False, allow_unicode=True).rstrip())
        elif name == "/wait":
            milliseconds = parse_wait(rest)
            if milliseconds is None:
                self.out.info("usage: /wait DURATION, e.g. /wait 30s, /wait 10m, /wait 2h")
            else:
                self.step(lambda: self.sim.elapse(milliseconds), waited=rest)
        elif name == "/agent":
            self.agent(rest)
        else:
            self.out.info(f"unknown command {name}; /help lists the commands (start with // to send a '/')")
        return True

    def agent(self, rest: str) -> None:
        action, _, text = rest.partition(" ")
        if action not in ("accept", "resolve", "say") or (action == "say" and not text.strip()):
            self.out.info("usage: /agent accept | /agent say TEXT | /agent resolve")
            return
        if self.sim.state.status != "handoff":
            self.out.info("(the conversation is not handed off to an agent; nothing to do)")
            return
        self.step(lambda: self.sim.agent(action, text=text.strip()))

    def step(self, act: Callable[[], object], *, waited: str | None = None) -> None:
        """Run one action and show everything it caused, in order."""
        log = self.sim.log
        marks = (len(log.sent), len(log.trace), len(log.faults), len(self.ai.notes), len(log.handoffs))
        pipeline_marks = (len(log.blocked), len(log.pipeline_notes))
        was_ended = self.sim.state.ended
        try:
            act()
        except FlowdeskError as exc:
            self.out.fault(f"the conversation cannot go on: {exc} (/restart to start over)")
            return
        sent, trace, faults = log.sent[marks[0] :], log.trace[marks[1] :], log.faults[marks[2] :]
        self.out.turn(sent, trace, faults, self.flow.name, set(self.http.mocks))
        for note in self.ai.notes[marks[3] :]:
            self.out.dim(f"  · {note}")
        for blocked in log.blocked[pipeline_marks[0] :]:
            self.out.info(f"(blocked by the pipeline, {blocked})")
        for note in log.pipeline_notes[pipeline_marks[1] :]:
            self.out.dim(f"  · {note}; passed on unchanged")
        if waited is not None and not (sent or trace or faults):
            self.out.dim(f"  ({waited} passed; nothing was due)")
        for queue in log.handoffs[marks[4] :]:
            self.out.info(f"(handed off to queue {queue!r}: /agent accept, /agent say TEXT, /agent resolve, or /wait)")
        state = self.sim.state
        if state.ended and not was_ended:
            self.out.info(f"(conversation ended: {state.end_status}; /restart to begin again, /quit to leave)")
        elif was_ended and waited is None:
            self.out.info("(the conversation has ended; /restart to begin again)")
        self.out.flush()
