"""Benchmark: the ``sensitive_words`` processor against one big ``re`` alternation of the same words.

Generates, from a fixed seed, a word list (half English pseudo-words of 2-4 syllables, half
Chinese words of 2-4 common characters; 10,000 by default) and about ``--mb`` MB (10^6 bytes
of UTF-8) of mixed Chinese/English customer messages of ``--message-kb`` KB each, where one
message in ``--hit-every`` carries a listed word (some upper-case, some letter-spaced). Then,
over the same messages, times

- engine:   ``SensitiveWords({"lists": [...], "action": "flag"})`` (``--action`` to change),
            the list read from a file as in production; ``process(message, context)`` on
            each message in turn. Not timed: building the automaton (at the first
            message, a warm-up one; reported as ``build_ms``) and making the messages.
- baseline: ``re.compile("|".join(escaped words, longest first), re.IGNORECASE)``;
            ``pattern.findall(message.text)`` on each message. Not timed: compiling it
            (reported as ``compile_ms``). It does less than the engine: no full-width or
            traditional folding, no separators between letters, no word boundaries. It is
            slow, so each run stops after ``--baseline-seconds`` and its throughput is that
            of the messages it got through (``messages`` says how many).

Each side runs ``--runs`` times, alternating; the figures are the medians. Also printed,
not part of the ratio: the floor (``floor_mb_per_s``), folding each message and running the
automaton over it with no boundary checks and no way back to original positions, to show
what the rest of the processor costs.

    python bench/sensitive_words.py [--words 10000] [--mb 10] [--runs 3] [--json]

With ``--json`` the last line is one JSON object (DESIGN.md section 6):
``{"bench": "sensitive_words", "params": {...}, "engine": {"mb_per_s", ...},
"baseline": {"mb_per_s", ...}, "ratio": {"mb_per_s"}}``. Target: engine at least 5x the regex.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import ahocorasick  # type: ignore[import-not-found]  # noqa: E402

from bench._common import json_line, load_average, machine, ratios, run_and_exit  # noqa: E402
from engine.pipeline.sensitive_words import SensitiveWords  # noqa: E402
from engine.pipeline.types import Message, PipelineContext  # noqa: E402
from engine.pipeline.words import fold_table  # noqa: E402

SEED = 20240611
MB = 1_000_000
_ONSETS = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br", "ch", "st"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou"]
_CODAS = ["", "", "", "n", "r", "s", "t", "l", "ck", "nd"]
_PUNCT_ZH = ["，", "。", "！", "？", "、"]


# -- data -----------------------------------------------------------------------------------------


def _hanzi() -> list[str]:
    """The 3,755 level-1 characters of GB2312: the commonest simplified Chinese characters."""
    chars = []
    for high in range(0xB0, 0xD8):
        for low in range(0xA1, 0xFF):
            try:
                chars.append(bytes([high, low]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars


def _pseudo_word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))


def make_words(count: int, rng: random.Random, hanzi: Sequence[str]) -> list[str]:
    """``count`` distinct words: half English pseudo-words (2-4 syllables), half Chinese (2-4 characters)."""
    words: set[str] = set()
    while len(words) < count // 2:
        words.add(_pseudo_word(rng, rng.randint(2, 4)))
    while len(words) < count:
        words.add("".join(rng.choices(hanzi, k=rng.randint(2, 4))))
    return sorted(words)


def _evasive(word: str, rng: random.Random) -> str:
    """A listed word as people write it: as is, upper-case, or letter-spaced."""
    kind = rng.random()
    if kind < 0.2:
        return word.upper()
    if kind < 0.3:
        return " ".join(word)
    return word


def make_messages(
    words: Sequence[str], rng: random.Random, hanzi: Sequence[str], *, mb: float, message_bytes: int, hit_every: int
) -> list[str]:
    """Messages of about ``message_bytes`` UTF-8 bytes, ``mb`` MB in all; one in ``hit_every`` has a listed word."""
    vocabulary = [_pseudo_word(rng, rng.randint(1, 3)) for _ in range(3000)]
    messages: list[str] = []
    total = 0
    while total < mb * MB:
        parts: list[str] = []
        size = 0
        while size < message_bytes:
            if rng.random() < 0.5:
                sentence = " ".join(rng.choices(vocabulary, k=rng.randint(5, 15))).capitalize() + ". "
            else:
                sentence = "".join(rng.choices(hanzi, k=rng.randint(8, 30))) + rng.choice(_PUNCT_ZH)
            parts.append(sentence)
            size += len(sentence.encode("utf-8"))
        if len(messages) % hit_every == 0:
            parts.insert(rng.randrange(len(parts) + 1), " " + _evasive(rng.choice(words), rng) + " ")
        text = "".join(parts)
        messages.append(text)
        total += len(text.encode("utf-8"))
    return messages


# -- the two sides --------------------------------------------------------------------------------


def time_engine(processor: SensitiveWords, messages: Sequence[Message], context: PipelineContext) -> dict[str, Any]:
    hits = 0
    start = time.perf_counter()
    for message in messages:
        result = processor.process(message, context)
        hits += result.flags.get("sensitive_words", 0) if isinstance(result, Message) else 1
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "messages": len(messages), "hits": hits}


def time_baseline(pattern: re.Pattern[str], messages: Sequence[str], budget: float) -> dict[str, Any]:
    hits = done = 0
    start = time.perf_counter()
    elapsed = 0.0
    for text in messages:
        hits += len(pattern.findall(text))
        done += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            break
    return {"seconds": elapsed, "messages": done, "hits": hits}


def time_floor(words: Sequence[str], messages: Sequence[str]) -> float:
    """Seconds to fold each message and run it through an automaton of the folded words, nothing else."""
    table = fold_table(traditional=False, encoded=True)
    automaton = ahocorasick.Automaton()
    for word in words:
        automaton.add_word(word.translate(table), len(word))
    automaton.make_automaton()
    start = time.perf_counter()
    for text in messages:
        for _ in automaton.iter(text.translate(table)):
            pass
    return time.perf_counter() - start


# -- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=10_000, help="words in the list (default 10000)")
    parser.add_argument("--mb", type=float, default=10, help="MB (10^6 bytes of UTF-8) of text (default 10)")
    parser.add_argument("--message-kb", type=float, default=2, help="size of a message in KB (default 2)")
    parser.add_argument("--hit-every", type=int, default=5, help="one message in N has a listed word (default 5)")
    parser.add_argument("--action", choices=["flag", "mask"], default="flag", help="engine action (default flag)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument(
        "--baseline-seconds", type=float, default=5, help="time budget of one baseline run (default 5 s)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    args = parser.parse_args(argv)
    if args.words < 2 or args.mb <= 0 or args.message_kb <= 0 or args.hit_every < 1 or args.runs < 1:
        parser.error("--words must be at least 2; --mb, --message-kb, --hit-every and --runs positive")

    load = load_average()
    rng = random.Random(SEED)
    hanzi = _hanzi()
    started = time.perf_counter()
    words = make_words(args.words, rng, hanzi)
    texts = make_messages(
        words, rng, hanzi, mb=args.mb, message_bytes=int(args.message_kb * 1000), hit_every=args.hit_every
    )
    sizes = [len(text.encode("utf-8")) for text in texts]
    total_mb = sum(sizes) / MB
    print(
        f"{len(words)} words, {len(texts)} messages of ~{statistics.mean(sizes):.0f} bytes, "
        f"{total_mb:.1f} MB (generated in {time.perf_counter() - started:.1f} s)"
    )

    with tempfile.TemporaryDirectory(prefix="flowdesk-bench-") as tmp:
        list_file = Path(tmp) / "words.txt"
        list_file.write_text("\n".join(words) + "\n", encoding="utf-8")
        context = PipelineContext(
            flow="bench", conversation_id="c", direction="in", key="c", now=time.time(),
            word_lists={"bench": {"files": [str(list_file)]}},
        )  # fmt: skip
        processor = SensitiveWords({"lists": ["bench"], "action": args.action})
        messages = [Message(id=str(i), text=text, channel="webchat") for i, text in enumerate(texts)]
        start = time.perf_counter()
        processor.process(Message(id="warm", text="hello", channel="webchat"), context)
        build_ms = (time.perf_counter() - start) * 1000

        start = time.perf_counter()
        pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.IGNORECASE)
        compile_ms = (time.perf_counter() - start) * 1000
        print(f"engine automaton built in {build_ms:.0f} ms; baseline regex compiled in {compile_ms:.0f} ms")

        engine_runs: list[dict[str, Any]] = []
        baseline_runs: list[dict[str, Any]] = []
        for run in range(args.runs):
            eng = time_engine(processor, messages, context)
            base = time_baseline(pattern, texts, args.baseline_seconds)
            eng["mb_per_s"] = total_mb / eng["seconds"]
            base["mb_per_s"] = sum(sizes[: base["messages"]]) / MB / base["seconds"]
            engine_runs.append(eng)
            baseline_runs.append(base)
            print(
                f"  run {run + 1}: engine {eng['mb_per_s']:7.2f} MB/s ({eng['messages']} messages, {eng['hits']} hits)"
                f"   baseline {base['mb_per_s']:7.3f} MB/s ({base['messages']} messages in {base['seconds']:.1f} s,"
                f" {base['hits']} matches)"
            )
        floor_mb_per_s = total_mb / time_floor(words, texts)

    engine = {
        "mb_per_s": round(statistics.median(r["mb_per_s"] for r in engine_runs), 3),
        "messages": len(messages),
        "hits": engine_runs[0]["hits"],
        "build_ms": round(build_ms, 1),
    }
    baseline = {
        "mb_per_s": round(statistics.median(r["mb_per_s"] for r in baseline_runs), 4),
        "messages": min(r["messages"] for r in baseline_runs),
        "compile_ms": round(compile_ms, 1),
    }
    ratio = ratios(engine, baseline, ("mb_per_s",))
    print(f"engine   SensitiveWords({args.action}).process:   {engine['mb_per_s']:8.2f} MB/s (median)")
    print(f"baseline re alternation findall:        {baseline['mb_per_s']:8.3f} MB/s (median)")
    print(f"floor: fold + automaton, no checks:     {floor_mb_per_s:8.2f} MB/s (for scale; not in the ratio)")
    print(f"ratio engine/baseline:                  {ratio.get('mb_per_s', float('nan')):.1f}x   (target: at least 5x)")
    if args.json:
        params = {
            "words": len(words),
            "mb": round(total_mb, 2),
            "message_bytes": int(args.message_kb * 1000),
            "hit_every": args.hit_every,
            "action": args.action,
            "runs": args.runs,
            "baseline_seconds": args.baseline_seconds,
            "seed": SEED,
            "floor_mb_per_s": round(floor_mb_per_s, 2),
            "loadavg_1m_at_start": load,
            **machine(),
        }
        print(json_line("sensitive_words", params, engine, baseline, ratio))
    return 0


if __name__ == "__main__":
    run_and_exit(main)
