"""Benchmark: how long `flowdesk validate` takes over a directory of flows.

Generates N realistic flow files (15-40 steps each: waits, switches, asks with
expectations, http look-ups with secrets, AI chains, classify, hand-offs, folded
multi-line templates, a `tests:` block) into a temporary directory, then times

- engine:   ``engine.flow.validate.compile_paths([dir])`` -- every layer: YAML with
            positions, JSON Schema, semantics, expressions, compilation;
- baseline: read each file, ``yaml.safe_load`` it and validate it against
            ``schemas/flow.schema.json`` with ``jsonschema`` -- the least any
            validator of these files must do.

Each run happens in a fresh Python process (imports done, then the clock starts),
so every run is cold: no expression, template or schema caches carried over from
a previous run. Engine and baseline runs alternate. Prints the median of the runs
in ms, per file, and the ratio engine/baseline.

    python bench/validate.py [--files N] [--runs R] [--json]

With ``--json`` the last line is one JSON object:
``{"bench": "validate", "params": {...}, "engine": {"p50_ms", "per_file_ms"},
"baseline": {...}, "ratio": {"p50_ms"}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MIN_STEPS, MAX_STEPS = 15, 40

# -- flow generator ------------------------------------------------------------------------------

_TOPICS = [
    ("refund", ["refund", "money back", "退款"], "order"),
    ("order_status", ["where is my order", "track", "订单"], "order"),
    ("invoice", ["invoice", "receipt", "发票"], "order"),
    ("exchange", ["exchange", "wrong size", "换货"], "order"),
    ("shipping", ["shipping", "delivery", "配送"], "faq"),
    ("payment", ["pay", "paypal", "付款"], "faq"),
    ("warranty", ["warranty", "broken", "保修"], "classify"),
    ("account", ["password", "login", "账户"], "classify"),
    ("loyalty", ["points", "vip", "积分"], "vars"),
    ("address", ["address", "moved", "地址"], "vars"),
]


def _say(text_en: str, text_zh: str) -> str:
    return f"{{% if vars.zh %}}{text_zh}\n{{%- else %}}{text_en}{{% endif %}}"


def generate_flow(index: int, rng: random.Random) -> dict[str, Any]:
    """One flow as data: a shell (listen, route, answer, hand-off, endings) plus topic blocks."""
    # A topic block adds 1-4 steps, so aim up to 3 below the maximum.
    target = rng.randint(MIN_STEPS, MAX_STEPS - 3)
    steps: dict[str, Any] = {}
    vars_: dict[str, Any] = {"zh": False, "order_id": "", "points": 0}
    cases: list[dict[str, str]] = []
    mocks_http: dict[str, Any] = {}

    steps["listen"] = {
        "description": "Wait for the customer's next message.",
        "wait": "message",
        "timeout": "30m",
        "on_timeout": "idle_close",
        "set": {"zh": "vars.zh or message.text is matching('[\\u4e00-\\u9fff]')"},
    }
    steps["route"] = {"switch": cases, "default": "answer"}

    topics = _TOPICS[:]
    rng.shuffle(topics)
    shell_after = 8  # answer, no_answer, human_check, human, agents_busy, closed_notice, close, idle_close
    n = 0
    while len(steps) + shell_after < target:
        name, words, style = topics[n % len(topics)]
        suffix = f"{name}_{n // len(topics)}" if n >= len(topics) else name
        n += 1
        pattern = "(?i)" + "|".join(words)
        if style == "order":
            entry = f"ask_{suffix}"
            steps[entry] = {
                "ask": _say(
                    f"Which order is it about ({name.replace('_', ' ')})? It has 6 to 12 digits.",
                    "请告诉我您的订单号（6到12位数字）。",
                ),
                "expect": "(answer | digits) is matching('^[0-9]{6,12}$')",
                "retry_prompt": _say("Order numbers have 6 to 12 digits; please check it.", "订单号是6到12位数字。"),
                "max_attempts": 3,
                "on_fail": "human_check",
                "timeout": "30m",
                "on_timeout": "idle_close",
                "set": {"order_id": "answer | digits"},
            }
            steps[f"lookup_{suffix}"] = {
                "http": {
                    "method": rng.choice(["GET", "POST"]),
                    "url": "{{ settings.shop_api }}/orders/{{ vars.order_id }}/" + name,
                    "headers": {"Authorization": "Bearer {{ secret('SHOP_TOKEN') }}", "Accept": "application/json"},
                    "timeout": "5s",
                    "retries": 2,
                },
                "save_as": f"{suffix}_result",
                "on_error": f"failed_{suffix}",
            }
            vars_[f"{suffix}_result"] = {}
            steps[f"reply_{suffix}"] = {
                "say": _say(
                    f"Order {{{{ vars.order_id }}}}: {{{{ vars.{suffix}_result.status }}}}"
                    f"{{%- if vars.{suffix}_result.eta %}}, expected on {{{{ vars.{suffix}_result.eta }}}}"
                    "{% endif %}.",
                    f"订单 {{{{ vars.order_id }}}} 的状态：{{{{ vars.{suffix}_result.status }}}}。",
                ),
                "next": "listen",
            }
            steps[f"failed_{suffix}"] = {
                "say": _say("Sorry, I couldn't find order {{ vars.order_id }} right now.", "抱歉，我查不到这个订单。"),
                "next": "human_check",
            }
            mocks_http[f"lookup_{suffix}"] = {"status": "shipped", "eta": "2026-01-07"}
        elif style == "faq":
            entry = f"faq_{suffix}"
            steps[entry] = {
                "say": _say(
                    f"Here is what you need to know about {name}: see {{{{ settings.brand }}}}/help/{name}.",
                    f"关于{words[-1]}：请访问帮助中心。",
                ),
                "next": "listen",
            }
        elif style == "classify":
            entry = f"classify_{suffix}"
            steps[entry] = {
                "classify": {
                    "intents": {
                        "broken": ["it is broken", "does not work", "坏了"],
                        "question": ["how do I", "can I", "怎么"],
                    },
                    "min_confidence": 0.5,
                    "text": "message.text",
                },
                "routes": {"broken": f"broken_{suffix}", "question": "answer", "_other": "answer"},
                "save_as": f"{suffix}_intent",
            }
            steps[f"broken_{suffix}"] = {
                "say": _say("I'm sorry to hear that. Let me get a colleague.", "很抱歉，我为您转接同事。"),
                "next": "human_check",
            }
        else:
            entry = f"note_{suffix}"
            steps[entry] = {
                "set": {"points": "vars.points + 10", f"{suffix}_seen": True},
                "next": f"check_{suffix}",
            }
            steps[f"check_{suffix}"] = {
                "switch": [
                    {"if": "vars.points > 100 or 'vip' in contact.tags", "goto": f"vip_{suffix}"},
                ],
                "default": f"std_{suffix}",
            }
            steps[f"vip_{suffix}"] = {
                "say": _say(
                    "You have {{ vars.points }} points: thank you for being a VIP!", "您有 {{ vars.points }} 积分。"
                ),
                "next": "listen",
            }
            steps[f"std_{suffix}"] = {"say": _say("Noted, thanks!", "好的，已记录。"), "next": "listen"}
        cases.append({"if": f"message.text is matching('{pattern}')", "goto": entry})

    steps["answer"] = {"ai": "helpdesk", "on_error": "no_answer", "next": "listen"}
    steps["no_answer"] = {
        "say": _say("Sorry, I don't have a good answer to that.", "抱歉，这个问题我回答不了。"),
        "next": "human_check",
    }
    steps["human_check"] = {
        "switch": [{"if": "business_hours('support')", "goto": "human"}],
        "default": "closed_notice",
    }
    steps["human"] = {
        "say": _say("I'm connecting you with a colleague, one moment please...", "正在为您转接人工客服，请稍候……"),
        "handoff": {"queue": "support", "timeout": "10m", "note": "{{ transcript(last=6) }}"},
        "on_timeout": "agents_busy",
        "next": "close",
    }
    steps["agents_busy"] = {
        "say": _say("Sorry, all my colleagues are busy right now.", "抱歉，所有客服都在忙。"),
        "next": "listen",
    }
    steps["closed_notice"] = {
        "say": _say("Our team is not in right now; leave your e-mail address.", "人工客服现在不在线。"),
        "next": "listen",
    }
    steps["close"] = {
        "say": _say("Thanks for contacting {{ settings.brand }}!", "感谢您的联系，再见！"),
        "end": "resolved",
    }
    steps["idle_close"] = {
        "say": _say("I'm closing this chat after 30 minutes of silence.", "本次对话已关闭。"),
        "end": "abandoned",
    }

    first_case = cases[0]["goto"] if cases else "answer"
    return {
        "flow": f"bench-{index:04d}",
        "description": f"Generated support flow #{index} with {len(steps)} steps",
        "channels": rng.sample(["webchat", "telegram", "whatsapp", "email", "slack"], k=rng.randint(1, 3)),
        "priority": rng.randint(0, 5),
        "vars": vars_,
        "pipeline": {
            "inbound": [{"normalize": {"max_length": 2000}}, {"pii_redact": {"kinds": ["email", "phone"]}}],
            "outbound": [{"sensitive_words": {"lists": ["default"], "action": "mask"}}],
        },
        "ai": {
            "helpdesk": {
                "system": "You are the assistant of {{ settings.brand }}. Answer in the customer's language.",
                "providers": [
                    {"use": "openai", "profile": "default", "timeout": "8s", "retries": 1},
                    {"use": "faq", "knowledge": "kb/faq.yaml"},
                ],
                "min_confidence": 0.4,
                "context": {"strategy": "recent", "max_turns": 12},
            }
        },
        "steps": steps,
        "tests": [
            {
                "name": "a question goes to the AI",
                "mock": {"ai": {"answer": "We ship within 2 days."}},
                "turns": [{"user": "do you ship abroad?"}, {"bot": "We ship within 2 days."}, {"step": "listen"}],
            },
            {
                "name": "first topic",
                "mock": {"http": mocks_http} if mocks_http else {},
                "turns": [{"user": "hello"}, {"step": "listen"}, {"user": first_case}],
            },
        ],
    }


class _FlowDumper(yaml.SafeDumper):
    """Writes multi-line templates as `|` blocks, the way people write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_FlowDumper.add_representer(str, _str)


def write_flows(directory: Path, count: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        data = generate_flow(i, rng)
        path = directory / f"flow_{i:04d}.yaml"
        text = yaml.dump(data, Dumper=_FlowDumper, sort_keys=False, allow_unicode=True, width=100)
        path.write_text(f"# generated by bench/validate.py\n{text}", encoding="utf-8")
        paths.append(path)
    return paths


# -- one timed run, in a fresh process ------------------------------------------------------------


def _run_engine(directory: Path) -> dict[str, Any]:
    # Each worker imports only its own side, before the clock starts.
    from engine.flow.validate import compile_paths  # noqa: PLC0415

    start = time.perf_counter()
    result = compile_paths([directory])
    elapsed = time.perf_counter() - start
    return {
        "ms": elapsed * 1000,
        "files": len(result.flows),
        "errors": sum(d.is_error for d in result.diagnostics),
        "warnings": sum(not d.is_error for d in result.diagnostics),
        "first": result.diagnostics[0].format() if result.diagnostics else None,
    }


def _run_baseline(directory: Path) -> dict[str, Any]:
    from jsonschema import Draft202012Validator  # noqa: PLC0415

    start = time.perf_counter()
    schema = json.loads((REPO / "schemas" / "flow.schema.json").read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema)
    files = errors = 0
    for path in sorted(directory.rglob("*.yaml")):
        data = yaml.safe_load(path.read_bytes())
        errors += sum(1 for _ in validator.iter_errors(data))
        files += 1
    elapsed = time.perf_counter() - start
    return {"ms": elapsed * 1000, "files": files, "errors": errors, "warnings": 0, "first": None}


def _timed_run(which: str, directory: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", which, str(directory)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{which} run failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100, help="flow files to generate (default 100)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each side (default 5)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.add_argument("--worker", nargs=2, metavar=("WHICH", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        which, directory = args.worker
        run = _run_engine if which == "engine" else _run_baseline
        print(json.dumps(run(Path(directory))))
        return 0

    with tempfile.TemporaryDirectory(prefix="flowdesk-bench-") as tmp:
        directory = Path(tmp)
        paths = write_flows(directory, args.files)
        sizes = [len(yaml.safe_load(p.read_text(encoding="utf-8"))["steps"]) for p in paths]
        assert min(sizes) >= MIN_STEPS and max(sizes) <= MAX_STEPS, (min(sizes), max(sizes))
        total_kb = sum(p.stat().st_size for p in paths) / 1024
        print(
            f"{len(paths)} flows, {min(sizes)}-{max(sizes)} steps (mean {statistics.mean(sizes):.1f}), "
            f"{total_kb:.0f} KB in {directory}"
        )

        engine_ms: list[float] = []
        baseline_ms: list[float] = []
        for i in range(args.runs):
            eng = _timed_run("engine", directory)
            base = _timed_run("baseline", directory)
            if eng["errors"] or eng["files"] != len(paths):
                raise SystemExit(f"generated flows do not validate cleanly: {eng}")
            if base["errors"] or base["files"] != len(paths):
                raise SystemExit(f"generated flows fail the schema: {base}")
            engine_ms.append(eng["ms"])
            baseline_ms.append(base["ms"])
            print(
                f"  run {i + 1}: engine {eng['ms']:8.1f} ms ({eng['warnings']} warnings)   "
                f"baseline {base['ms']:8.1f} ms"
            )

    n = len(paths)
    eng_p50, base_p50 = statistics.median(engine_ms), statistics.median(baseline_ms)
    ratio = eng_p50 / base_p50 if base_p50 else float("inf")
    print(f"engine   compile_paths:                 p50 {eng_p50:8.1f} ms   {eng_p50 / n:6.2f} ms/file")
    print(f"baseline yaml.safe_load + jsonschema:   p50 {base_p50:8.1f} ms   {base_p50 / n:6.2f} ms/file")
    print(f"ratio engine/baseline:                  {ratio:.2f}x")
    if args.json:
        print(
            json.dumps(
                {
                    "bench": "validate",
                    "params": {
                        "files": n,
                        "runs": args.runs,
                        "min_steps": min(sizes),
                        "max_steps": max(sizes),
                        "total_kb": round(total_kb, 1),
                        "cold": "fresh process per run",
                        "python": sys.version.split()[0],
                    },
                    "engine": {"p50_ms": round(eng_p50, 2), "per_file_ms": round(eng_p50 / n, 3)},
                    "baseline": {"p50_ms": round(base_p50, 2), "per_file_ms": round(base_p50 / n, 3)},
                    "ratio": {"p50_ms": round(ratio, 3)},
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
