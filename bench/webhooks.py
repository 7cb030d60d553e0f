"""Benchmark: signed Telegram updates through ``flowdesk serve`` to a Bot API emulator, beside the web-chat round trip.

End to end, in one invocation: this script starts ``python -m engine serve`` as a
subprocess (embedded Temporal on SQLite, the SQLite store, on free ports of
127.0.0.1) with web chat and Telegram configured (``channels.telegram``: the bot
token and the webhook's secret token from environment variables, ``api_base`` the
sink of bench/telegram_sink.py, in its own process) and
bench/_common.py's echo flow serving every channel: ``listen (wait: message) ->
answer (ai: echo) -> listen``. Each message carries a unique token that its echoed
reply carries back, which maps every reply to its message.

- engine:   Telegram. Update ``i`` (its own growing ``update_id``, from chat
            ``i % C``, with the ``X-Telegram-Bot-Api-Secret-Token`` header) is
            POSTed to ``/webhooks/telegram`` at its planned time ``t0 + i/R`` by its
            own task on one ``httpx.AsyncClient``, whether or not earlier ones were
            answered (open loop). Webhook latency: planned send time -> the HTTP
            answer (the message is durable then, the reply not yet sent). Reply
            latency: planned send time -> the emulator recording the ``sendMessage``
            that carries the message's token.
- baseline: the web-chat round trip, exactly bench/roundtrip_ws.py's engine side
            (C sockets on ``/ws/chat``, one visitor each; planned send time -> the
            reply frame on the socket), against the same serve process.

With ``--rounds N`` the two alternate, web chat then Telegram, N times (fresh
visitors and chats each round, each phase with its own warm-up at the same rate),
so the host's noise falls on both; the figures reported are the medians over the
rounds of each key. CPU per message of the serve process and of its Temporal
child (psutil), as roundtrip_ws does. For each Telegram phase the serve process's
own histograms (``/metrics``, read before and after it) split the webhook's time:
the handler from body to answer, of which the Temporal update, and the
``sendMessage`` calls of the delivery activity.

    python bench/webhooks.py [--rate 50] [--conversations 50] [--seconds 10] [--warmup 2] [--rounds 1] [--json]
    python bench/webhooks.py --only telegram --seconds 30     # one side only, e.g. to profile the serve process

With ``--json`` the last line is one JSON object (DESIGN.md section 6):
``{"bench": "webhooks", "params": {...}, "engine": {"webhook_p50_ms", "webhook_p99_ms",
"reply_p50_ms", "reply_p99_ms", "per_s", ...}, "baseline": {"p50_ms", "p99_ms", ...},
"ratio": {"reply_p99_vs_webchat_p99", ...}, "targets": {...}}``. Target at 50 msg/s:
webhook answer p99 under 50 ms; reply p99 within 1.5x the web-chat round trip's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._common import (  # noqa: E402 - after the path is set
    FlowdeskServer,
    chat_handshake,
    flowdesk_serve,
    json_line,
    latency_summary,
    load_average,
    machine,
    ratios,
    run_and_exit,
    ws_open,
)
from bench.roundtrip import Phase, add_load_arguments, check_load_arguments, load_params  # noqa: E402
from bench.roundtrip_ws import ChatSockets, measure  # noqa: E402
from tests.vendors.telegram import SECRET, TOKEN, TelegramUpdates  # noqa: E402

#: The serve process reads the bot's secrets from its environment, as a deployment would.
TOKEN_ENV, SECRET_ENV = "FLOWDESK_BENCH_TELEGRAM_TOKEN", "FLOWDESK_BENCH_TELEGRAM_SECRET"
#: The round is in the token, so a reply that comes in after its phase ended never counts for the next one.
ROUND_TOKEN = re.compile(r"\bw(\d+)-tok-(\d+)\b")
#: Chats of round ``r`` are ``CHAT_BASE + r * CHATS_PER_ROUND + j``: new conversations every round, like the
#: web chat's new visitors.
CHAT_BASE, CHATS_PER_ROUND = 700_000_000, 1_000_000
TARGET_WEBHOOK_P99_MS = 50.0
TARGET_REPLY_RATIO = 1.5
#: The serve process's histograms read around each phase, by the name reported, for the phase's channel: the
#: webhook handler from body to answer (Telegram only), the Temporal update inside it, the channel's send.
SERVER_HISTOGRAMS = {
    "handler": "flowdesk_webhook_seconds",
    "update": "flowdesk_update_roundtrip_seconds",
    "send": "flowdesk_delivery_seconds",
}


class StampingTelegram:
    """The Bot API as the bench's replies reach it: ``bench/telegram_sink.py`` in its own process.

    The sink prints each ``sendMessage`` with the system's monotonic time it arrived;
    a reader thread here hands the line to the round's phase (``setdefault``: a
    redelivery keeps the first time), the counters kept under a lock. In its own
    process, the receiving side does not share the load generator's GIL.
    """

    def __init__(self) -> None:
        self.phase: Phase | None = None
        self.round = -1
        self.replies: Counter[int] = Counter()
        self.untokened: list[str] = []
        self.stray = 0
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self.api_base = ""

    def __enter__(self) -> StampingTelegram:
        sink = Path(__file__).with_name("telegram_sink.py")
        self._process = subprocess.Popen(
            [sys.executable, str(sink), TOKEN], stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self._process.stdout is not None
        port = self._process.stdout.readline().split()[1]
        self.api_base = f"http://127.0.0.1:{port}"
        threading.Thread(target=self._read, name="telegram-sink-reader", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def begin(self, phase: Phase, round_: int) -> None:
        with self._lock:
            self.phase, self.round = phase, round_
            self.replies = Counter()
            self.untokened = []
            self.stray = 0

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            at, _, text = line.rstrip("\n").partition("\t")
            self._stamp(json.loads(text), float(at))

    def _stamp(self, text: str, at: float) -> None:
        match = ROUND_TOKEN.search(text)
        with self._lock:
            if match is None:
                self.untokened.append(text)
            elif int(match.group(1)) != self.round:
                self.stray += 1  # a late reply of an earlier round
            else:
                index = int(match.group(2))
                self.replies[index] += 1
                if self.phase is not None:
                    self.phase.deliver(index, at)


class TelegramSender:
    """Posts round ``round_``'s update ``index`` from chat ``index % C``, as Telegram calls a webhook."""

    def __init__(self, http: httpx.AsyncClient, url: str, updates: TelegramUpdates, conversations: int) -> None:
        self.http, self.url, self.updates, self.conversations = http, url, updates, conversations
        self.round = 0
        self.statuses: Counter[int] = Counter()

    async def send(self, index: int) -> None:
        chat_id = CHAT_BASE + self.round * CHATS_PER_ROUND + index % self.conversations
        # One TelegramUpdates for the whole run: update ids (the message ids) keep growing across rounds.
        update = self.updates.text(chat_id, f"where is my order? w{self.round}-tok-{index}")
        headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": self.updates.secret}
        response = await self.http.post(self.url, content=json.dumps(update).encode(), headers=headers)
        self.statuses[response.status_code] += 1
        if response.status_code != 200:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:200]}")


# -- the serve process's own histograms ---------------------------------------------------------------------


async def api_token(settings: Path) -> str | None:
    """An API token for ``/metrics`` (``flowdesk token create``); None, said why, when it cannot be made."""
    argv = [sys.executable, "-m", "engine", "token", "create", "bench-webhooks", "--settings", str(settings)]
    done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        print(f"note: no API token for /metrics, so no server-side breakdown: {done.stderr.strip()[:200]}")
        return None
    return done.stdout.strip().splitlines()[0]


async def histograms(
    http: httpx.AsyncClient, server: FlowdeskServer, token: str | None, channel: str
) -> dict[str, list[float]]:
    """``[sum, count]`` of each of :data:`SERVER_HISTOGRAMS` of ``channel`` in the serve process now (empty without
    a token)."""
    if token is None:
        return {}
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    response = await http.get(server.url + "/metrics", headers={"authorization": f"Bearer {token}"})
    response.raise_for_status()
    found: dict[str, list[float]] = {name: [0.0, 0.0] for name in SERVER_HISTOGRAMS}
    wanted = {(metric, channel): name for name, metric in SERVER_HISTOGRAMS.items()}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            for suffix, slot in (("_sum", 0), ("_count", 1)):
                if sample.name.endswith(suffix):
                    name = wanted.get((sample.name.removesuffix(suffix), sample.labels.get("channel", "")))
                    if name is not None:
                        found[name][slot] = sample.value
    return found


def histogram_means(before: dict[str, list[float]], after: dict[str, list[float]]) -> dict[str, float | None]:
    """Mean milliseconds of each histogram over the observations between ``before`` and ``after``."""
    out: dict[str, float | None] = {}
    for name in SERVER_HISTOGRAMS:
        if name not in before or name not in after:
            continue
        total, count = after[name][0] - before[name][0], after[name][1] - before[name][1]
        if count:
            out[f"server_{name}_mean_ms"] = round(total * 1000 / count, 2)
    return out


# -- the phases ---------------------------------------------------------------------------------------------


async def webchat_phase(
    server: FlowdeskServer, args: argparse.Namespace, round_: int, *, http: httpx.AsyncClient, token: str | None
) -> dict[str, Any]:
    """bench/roundtrip_ws.py's engine side, on new visitors: its report."""
    before = await histograms(http, server, token, "webchat")
    url = server.ws_url("/ws/chat")
    sockets = await asyncio.gather(*(ws_open(url) for _ in range(args.conversations)))
    await asyncio.gather(*(chat_handshake(s) for s in sockets))
    chat = ChatSockets(list(sockets))
    try:
        phase = chat.phase = Phase(f"web chat, round {round_ + 1}")
        report = await measure(phase, chat.send, server, args)
        chat.phase = None
    finally:
        await chat.close()
    report |= histogram_means(before, await histograms(http, server, token, "webchat"))
    report["lost_replies"] = len(phase.missing())
    report["duplicate_replies"] = sum(n - 1 for n in chat.replies.values())
    report["replies_without_token"] = len(chat.untokened)
    if chat.untokened or chat.unexpected:
        print(f"  replies without a token: {chat.untokened[:3]}; other frames: {dict(chat.unexpected)}")
    return report


async def telegram_phase(
    server: FlowdeskServer,
    args: argparse.Namespace,
    round_: int,
    *,
    telegram: StampingTelegram,
    sender: TelegramSender,
    token: str | None,
) -> dict[str, Any]:
    """Telegram at the same load: webhook and reply latency, what got lost, the server's own split."""
    phase = Phase(f"telegram, round {round_ + 1}")
    telegram.begin(phase, round_)
    sender.round = round_
    sender.statuses = Counter()
    before = await histograms(sender.http, server, token, "telegram")
    report = await measure(phase, sender.send, server, args)
    after = await histograms(sender.http, server, token, "telegram")
    telegram.phase = None
    measured = list(phase.measured())
    webhook = [(phase.accepted[i] - phase.planned[i]) * 1000 for i in measured if i in phase.accepted]
    # Keys as DESIGN.md section 6 names latencies, with what they measure in front.
    out: dict[str, Any] = {f"webhook_{k}": v for k, v in latency_summary(webhook).items()} if webhook else {}
    out |= {f"reply_{k}": report.pop(k) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms") if k in report}
    out["webhook_count"] = len(webhook)
    out["webhook_errors"] = sum(1 for i in measured if i in phase.errors)
    # An update the webhook took (200) whose reply had not reached the emulator when the drain (--drain) ended.
    out["lost_replies"] = sum(1 for i in measured if i in phase.accepted and i not in phase.delivered)
    out["duplicate_replies"] = sum(n - 1 for n in telegram.replies.values())
    out["replies_without_token"] = len(telegram.untokened)
    out["late_replies_of_earlier_rounds"] = telegram.stray
    out["webhook_statuses"] = {str(k): v for k, v in sorted(sender.statuses.items())}
    out |= report
    out |= histogram_means(before, after)
    if telegram.untokened:
        print(f"  sendMessage without a token: {telegram.untokened[:3]}")
    return out


async def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    webchat: list[dict[str, Any]] = []
    telegram_rounds: list[dict[str, Any]] = []
    os.environ[TOKEN_ENV], os.environ[SECRET_ENV] = TOKEN, SECRET  # the serve process inherits them
    telegram = StampingTelegram()  # (its __enter__ is typed as the base class's)
    with telegram, tempfile.TemporaryDirectory(prefix="flowdesk-webhooks-") as tmp:
        root = Path(tmp)
        settings = {
            "channels": {
                "webchat": {"rate_per_second": 100, "burst": 100},  # as bench/_common.py's default
                "telegram": {
                    "bot_token": f"${{env:{TOKEN_ENV}}}",
                    "secret_token": f"${{env:{SECRET_ENV}}}",
                    "api_base": telegram.api_base,
                },
            }
        }
        started = time.monotonic()
        async with flowdesk_serve(root, settings=settings) as server:
            print(f"flowdesk serve ready in {time.monotonic() - started:.1f} s at {server.url} (pid {server.pid})")
            token = await api_token(root / "flowdesk.yaml")
            # Telegram opens up to 40 connections to a webhook (setWebhook's max_connections); kept alive here
            # so that the figures are the server's, not this client's TCP handshakes.
            limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
            async with httpx.AsyncClient(timeout=30, trust_env=False, limits=limits) as http:
                sender = TelegramSender(http, server.url + "/webhooks/telegram", TelegramUpdates(), args.conversations)
                for round_ in range(args.rounds):
                    if args.only in (None, "webchat"):
                        webchat.append(await webchat_phase(server, args, round_, http=http, token=token))
                        await asyncio.sleep(0.5)  # let the last records settle before the next phase
                    if args.only in (None, "telegram"):
                        telegram_rounds.append(
                            await telegram_phase(server, args, round_, telegram=telegram, sender=sender, token=token)
                        )
                    await asyncio.sleep(0.5)
            problems = server.problems()
    return telegram_rounds, webchat, problems


# -- the report ---------------------------------------------------------------------------------------------


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each numeric key's median over the rounds (counts of what went wrong: their sum); other keys from the last."""
    if not rounds:
        return {}
    summed = {"errors", "webhook_errors", "lost_replies", "duplicate_replies", "replies_without_token"}
    out: dict[str, Any] = {}
    for key in rounds[-1]:
        values = [r[key] for r in rounds if isinstance(r.get(key), (int, float)) and not isinstance(r[key], bool)]
        if key in summed:
            out[key] = sum(values)
        elif values:
            middle = float(statistics.median(values))
            out[key] = (
                int(middle) if middle.is_integer() and all(isinstance(v, int) for v in values) else round(middle, 2)
            )
        else:
            out[key] = rounds[-1][key]
    if "webhook_statuses" in rounds[0]:
        statuses: Counter[str] = Counter()
        for r in rounds:
            statuses.update(r.get("webhook_statuses", {}))
        out["webhook_statuses"] = dict(statuses)
    return out


def print_round(index: int, tg: dict[str, Any] | None, wc: dict[str, Any] | None) -> None:
    if wc is not None:
        print(
            f"round {index + 1}: web chat  p50 {wc.get('p50_ms', 0):7.1f}  p99 {wc.get('p99_ms', 0):7.1f} ms  "
            f"n={wc['count']} lost={wc['lost_replies']} {wc['per_s']:.1f}/s  "
            f"serve CPU {wc['server_cpu_ms_per_msg']} ms/msg"
        )
        _print_split(wc)
    if tg is None:
        return
    print(
        f"round {index + 1}: telegram  webhook p50 {tg.get('webhook_p50_ms', 0):7.1f}  "
        f"p99 {tg.get('webhook_p99_ms', 0):7.1f} ms  "
        f"reply p50 {tg.get('reply_p50_ms', 0):7.1f}  p99 {tg.get('reply_p99_ms', 0):7.1f} ms  n={tg['count']} "
        f"lost={tg['lost_replies']} webhook errors={tg['webhook_errors']} {tg['per_s']:.1f}/s  "
        f"serve CPU {tg['server_cpu_ms_per_msg']} ms/msg"
    )
    _print_split(tg)


def _print_split(report: dict[str, Any]) -> None:
    split = [f"{k[len('server_') : -len('_mean_ms')]} {v} ms" for k, v in report.items() if k.endswith("_mean_ms")]
    if split:
        print(f"         serve process's histograms, mean per message: {', '.join(split)}")


def _ratio(engine: Any, baseline: Any) -> float | None:
    if isinstance(engine, (int, float)) and isinstance(baseline, (int, float)) and baseline:
        return round(engine / baseline, 3)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser, "web-chat visitors and Telegram chats, each side")
    parser.add_argument("--rounds", type=int, default=1, help="web chat then Telegram, this many times (default 1)")
    parser.add_argument("--only", choices=("webchat", "telegram"), help="run one side only (for profiling)")
    args = parser.parse_args(argv)
    check_load_arguments(parser, args)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.conversations > CHATS_PER_ROUND:
        parser.error(f"--conversations is at most {CHATS_PER_ROUND}")
    if args.warmup * args.rate < args.conversations:
        print("note: the warm-up sends fewer messages than there are conversations: some start measured")

    logging.basicConfig(level=logging.ERROR)
    load = load_average()
    telegram_rounds, webchat_rounds, problems = asyncio.run(run(args))
    for index in range(args.rounds):
        print_round(
            index,
            telegram_rounds[index] if telegram_rounds else None,
            webchat_rounds[index] if webchat_rounds else None,
        )
    engine, baseline = medians(telegram_rounds), medians(webchat_rounds)
    if args.rounds > 1:
        engine["rounds"] = [{k: r.get(k) for k in ("webhook_p99_ms", "reply_p99_ms")} for r in telegram_rounds]
        baseline["rounds"] = [{k: r.get(k) for k in ("p50_ms", "p99_ms")} for r in webchat_rounds]
    # The reply against the web chat's round trip (different key names on the two sides), then engine/baseline
    # for the keys both sides share.
    ratio: dict[str, float | None] = {
        "reply_p50_vs_webchat_p50": _ratio(engine.get("reply_p50_ms"), baseline.get("p50_ms")),
        "reply_p99_vs_webchat_p99": _ratio(engine.get("reply_p99_ms"), baseline.get("p99_ms")),
        **ratios(engine, baseline, ("per_s", "server_cpu_ms_per_msg", "temporal_cpu_ms_per_msg")),
    }
    webhook_p99 = engine.get("webhook_p99_ms")
    reply_ratio = ratio["reply_p99_vs_webchat_p99"]
    targets = {
        "webhook_p99_ms_under": TARGET_WEBHOOK_P99_MS,
        "webhook_p99_met": isinstance(webhook_p99, float) and webhook_p99 < TARGET_WEBHOOK_P99_MS,
        "reply_p99_vs_webchat_p99_at_most": TARGET_REPLY_RATIO,
        "reply_p99_met": isinstance(reply_ratio, float) and reply_ratio <= TARGET_REPLY_RATIO,
    }
    # Per-round webhook p99s, since a median over few rounds hides how often the target is missed.
    webhook_p99s = [r.get("webhook_p99_ms") for r in telegram_rounds]
    print(
        f"medians over {args.rounds} round(s): telegram webhook p50 {engine.get('webhook_p50_ms')} "
        f"p99 {webhook_p99} ms, reply p50 {engine.get('reply_p50_ms')} p99 {engine.get('reply_p99_ms')} ms; "
        f"web chat p50 {baseline.get('p50_ms')} p99 {baseline.get('p99_ms')} ms; reply/web chat p50 "
        f"{ratio['reply_p50_vs_webchat_p50']}x p99 {reply_ratio}x; "
        f"lost replies: telegram {engine.get('lost_replies')}, "
        f"web chat {baseline.get('lost_replies')}"
    )
    print(
        f"target at 50 msg/s: webhook p99 < {TARGET_WEBHOOK_P99_MS:g} ms "
        f"({'met' if targets['webhook_p99_met'] else 'missed'}; per round {webhook_p99s}), reply p99 within "
        f"{TARGET_REPLY_RATIO:g}x the web chat's ({'met' if targets['reply_p99_met'] else 'missed'})"
    )
    for line in problems:
        print(f"server log: {line}")
    if args.json:
        params = {
            **load_params(args),
            "rounds": args.rounds,
            "order": "web chat then telegram, each round; medians over the rounds",
            "server": "python -m engine serve, embedded Temporal dev server on SQLite",
            "telegram_api": "bench/telegram_sink.py, its own process",
            "latency_to": "HTTP answer (webhook), sendMessage recorded (reply), reply frame (web chat)",
            "loadavg_1m_at_start": load,
            **machine(),
        }
        print(json_line("webhooks", params, engine, baseline, ratio, targets=targets))
    # Errors and lost replies are figures, not a failure; a side without a single reply is.
    empty = any(not r.get("count") for r in [*telegram_rounds, *webchat_rounds])
    return 1 if empty or not (telegram_rounds or webchat_rounds) else 0


if __name__ == "__main__":
    run_and_exit(main)
