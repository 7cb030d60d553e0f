"""Semantic layer of validation: kinds, references and the step graph.

Runs on a document that passed the schema, so shapes are known; it checks what a
schema cannot: that names resolve, that every step can be reached, and that no
loop can spin without waiting for anyone. Given the :class:`Installation`, AI
profiles are checked against its settings too.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from engine.errors import Diagnostic
from engine.flow.codes import make
from engine.flow.installation import Installation
from engine.flow.load import LoadedDocument, Path, json_path
from engine.flow.model import BLOCKING_KINDS, StepKind
from engine.flow.schema_check import describe
from engine.flow.steps import COMMON_KEYS, KIND_KEYS, TERMINAL_KINDS, Edge, edges, kinds_in
from engine.flow.vocabulary import Vocabulary


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """``did you mean 'refund'?`` for a near miss, else None."""
    guess = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"did you mean {guess[0]!r}?" if guess else None


class SemanticChecker:
    """Collects semantic diagnostics for one validated flow document."""

    def __init__(self, doc: LoadedDocument, vocabulary: Vocabulary, installation: Installation | None = None) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.vocabulary = vocabulary
        self.installation = installation
        self.steps: dict[str, Any] = self.data.get("steps") or {}
        self.order = list(self.steps)
        self.kinds: dict[str, StepKind] = {}
        self.out: list[Diagnostic] = []

    def report(self, code: str, message: str, path: Path, *, key: bool = False, hint: str | None = None) -> None:
        pos = self.doc.position(path, key=key)
        self.out.append(
            make(code, message, file=self.doc.file, line=pos.line, column=pos.column, path=json_path(path), hint=hint)
        )

    def run(self) -> list[Diagnostic]:
        self.check_kinds()
        self.check_step_references()
        self.check_chains()
        self.check_profiles()
        self.check_queues()
        self.check_pipeline()
        self.check_channels()
        self.check_flow_references()
        self.check_graph()
        self.check_tests(self.data.get("tests") or [], ("tests",))
        return self.out

    # -- steps -------------------------------------------------------------------

    def check_kinds(self) -> None:
        for name, step in self.steps.items():
            found = kinds_in(step)
            path: Path = ("steps", name)
            if not found:
                self.report(
                    "FD115",
                    f"step {name!r} does nothing",
                    path,
                    key=True,
                    hint="give it an action such as say, ask, wait, ai, http, handoff or end",
                )
                continue
            if len(found) > 1:
                kinds = " and ".join(repr(k.value) for k in found)
                self.report(
                    "FD115",
                    f"step {name!r} has two actions, {kinds}",
                    (*path, found[1].value),
                    key=True,
                    hint="split it into two steps joined with `next`",
                )
                continue
            kind = found[0]
            self.kinds[name] = kind
            allowed = COMMON_KEYS | KIND_KEYS[kind]
            for key in step:
                if key not in allowed:
                    owners = [k.value for k, keys in KIND_KEYS.items() if key in keys]
                    where = f"only on {' / '.join(owners)} steps" if owners else "not on steps"
                    self.report(
                        "FD120",
                        f"{key!r} has no meaning on a {kind.value} step ({name!r}); it belongs {where}",
                        (*path, key),
                        key=True,
                    )
            if kind is StepKind.GOTO_FLOW and "set" in step:
                self.report(
                    "FD120",
                    f"`set` on goto_flow step {name!r} would change variables the next flow never sees",
                    (*path, "set"),
                    key=True,
                    hint="pass values with `goto_flow: {flow: ..., with: {name: expression}}`",
                )
            if kind in TERMINAL_KINDS and "next" in step:
                self.report(
                    "FD304",
                    f"step {name!r} leaves the flow ({kind.value}), so its `next` is never taken",
                    (*path, "next"),
                    key=True,
                    hint="remove `next`",
                )
            if kind is StepKind.HANDOFF:
                self.check_handoff_timeout(name, step)
            if kind in (StepKind.AI, StepKind.HTTP) and "on_error" not in step:
                self.report(
                    "FD303",
                    f"{kind.value} step {name!r} has no `on_error`: if it fails the conversation ends",
                    path,
                    key=True,
                )

    def check_handoff_timeout(self, name: str, step: Mapping[str, Any]) -> None:
        """A hand-off that can time out should say where the customer goes when no agent came."""
        handoff = step["handoff"]
        timeout = (handoff.get("timeout") if isinstance(handoff, dict) else None) or step.get("timeout")
        if timeout is None or "on_timeout" in step:
            return
        then = (
            f"it fails over to `on_error` {step['on_error']!r}"
            if isinstance(step.get("on_error"), str)
            else "the conversation ends as timed_out"
        )
        inside = isinstance(handoff, dict) and "timeout" in handoff
        where: Path = ("steps", name, "handoff", "timeout") if inside else ("steps", name, "timeout")
        self.report(
            "FD305",
            f"handoff step {name!r} has a timeout ({timeout}) but no `on_timeout`:"
            f" when no agent takes it in time, {then}",
            where,
            key=True,
        )

    def _edges(self) -> list[Edge]:
        return [e for name, kind in self.kinds.items() for e in edges(name, self.steps[name], kind, self.order)]

    def check_step_references(self) -> None:
        start = self.data.get("start")
        if isinstance(start, str) and start not in self.steps:
            self.report(
                "FD201", f"start step {start!r} is not defined", ("start",), hint=did_you_mean(start, self.steps)
            )
        for edge in self._edges():
            if edge.target not in self.steps and not edge.implicit:
                self.report(
                    "FD201",
                    f"step {edge.target!r} is not defined (used by step {edge.source!r})",
                    ("steps", edge.source, *edge.field),
                    hint=did_you_mean(edge.target, self.steps) or "point to a step defined under `steps:`",
                )
        for name, kind in self.kinds.items():
            if kind is StepKind.CLASSIFY:
                intents = set(self.steps[name]["classify"].get("intents") or {})
                for intent in self.steps[name].get("routes") or {}:
                    if intent != "_other" and intent not in intents:
                        self.report(
                            "FD210",
                            f"route {intent!r} of step {name!r} is not one of its intents",
                            ("steps", name, "routes", intent),
                            key=True,
                            hint=did_you_mean(intent, intents) or "list the intent under `classify.intents`",
                        )

    def check_chains(self) -> None:
        chains: dict[str, Any] = self.data.get("ai") or {}
        for name, kind in self.kinds.items():
            step = self.steps[name]
            path: Path
            if kind is StepKind.AI:
                ref, path = step["ai"], ("steps", name, "ai")
            elif kind is StepKind.CLASSIFY and step["classify"].get("chain"):
                ref, path = step["classify"]["chain"], ("steps", name, "classify", "chain")
            else:
                continue
            if ref not in chains:
                self.report(
                    "FD202",
                    f"AI chain {ref!r} is not defined (used by step {name!r})",
                    path,
                    hint=did_you_mean(ref, chains) or "define it under `ai:` at the top of the flow",
                )
        for chain_name, chain in chains.items():
            for i, provider in enumerate(chain.get("providers") or []):
                use = provider.get("use", "")
                if use in self.vocabulary.providers or self.vocabulary.is_import_reference(use):
                    continue
                self.report(
                    "FD203",
                    f"AI provider {use!r} of chain {chain_name!r} is not known",
                    ("ai", chain_name, "providers", i, "use"),
                    hint=did_you_mean(use, self.vocabulary.providers)
                    or "known providers: " + ", ".join(sorted(self.vocabulary.providers)),
                )

    def check_profiles(self) -> None:
        """``profile:`` of an AI provider names a profile under ``ai_profiles`` of the settings."""
        if self.installation is None:
            return
        profiles = self.installation.ai_profiles
        source = self.installation.source
        for chain_name, chain in (self.data.get("ai") or {}).items():
            for i, provider in enumerate(chain.get("providers") or []):
                profile = provider.get("profile")
                if not isinstance(profile, str) or profile in profiles:
                    continue
                self.report(
                    "FD215",
                    f"AI profile {profile!r} of chain {chain_name!r} is not defined in {source}"
                    f" (known: {self.installation.known(profiles)})",
                    ("ai", chain_name, "providers", i, "profile"),
                    hint=did_you_mean(profile, profiles) or f"add `{profile}:` under `ai_profiles:` in {source}",
                )

    def check_queues(self) -> None:
        """A hand-off names a queue the settings describe, when they describe any.

        Admins describe queues through the API too, in the database, which the validator
        cannot see; so only settings that describe queues are held to them, and only as
        a warning: the hand-off works, but nobody may be a member of that queue.
        """
        installation = self.installation
        if installation is None or installation.queues is None:
            return
        for name, step in (self.data.get("steps") or {}).items():
            spec = step.get("handoff") if isinstance(step, dict) else None
            if spec is None:
                continue
            queue = spec if isinstance(spec, str) else spec.get("queue", "default") if isinstance(spec, dict) else None
            if not isinstance(queue, str) or queue in installation.queues:
                continue
            path: Path = ("steps", name, "handoff") if isinstance(spec, str) else ("steps", name, "handoff", "queue")
            source = installation.source
            self.report(
                "FD217",
                f"hand-off to queue {queue!r}: no such queue is described in {source}"
                f" (known: {installation.known(installation.queues)})",
                path,
                hint=did_you_mean(queue, installation.queues)
                or f"describe it under `queues:` in {source} or through the API (POST /api/queues)",
            )

    def check_pipeline(self) -> None:
        pipeline = self.data.get("pipeline") or {}
        for direction in ("inbound", "outbound"):
            for i, stage in enumerate(pipeline.get(direction) or []):
                name = stage if isinstance(stage, str) else next(iter(stage), "")
                if name in self.vocabulary.processors or self.vocabulary.is_import_reference(name):
                    continue
                path: Path = ("pipeline", direction, i) if isinstance(stage, str) else ("pipeline", direction, i, name)
                self.report(
                    "FD204",
                    f"processor {name!r} is not known",
                    path,
                    key=not isinstance(stage, str),
                    hint=did_you_mean(name, self.vocabulary.processors)
                    or "known processors: " + ", ".join(sorted(self.vocabulary.processors)),
                )

    def check_channels(self) -> None:
        for i, channel in enumerate(self.data.get("channels") or []):
            if not isinstance(channel, str) or channel == "*":
                continue
            kind, _, account = channel.partition(":")
            if kind not in self.vocabulary.channels:
                self.report(
                    "FD205",
                    f"channel {kind!r} is not known",
                    ("channels", i),
                    hint=did_you_mean(kind, self.vocabulary.channels)
                    or "known channels: " + ", ".join(sorted(self.vocabulary.channels)),
                )
            elif account:
                self.check_channel_account(kind, account, i)

    def check_channel_account(self, kind: str, account: str, index: int) -> None:
        """``kind:account`` names an account configured under ``channels.<kind>`` of the settings."""
        configured = None if self.installation is None else self.installation.channel_accounts
        if configured is None:
            return
        installation = self.installation
        assert installation is not None
        accounts = configured.get(kind, frozenset())
        if account in accounts:
            return
        where = f"channels.{kind}.accounts" if accounts - {"default"} else f"channels.{kind}"
        self.report(
            "FD216",
            f"channel account {kind}:{account} is not configured in {installation.source}"
            f" (accounts of {kind}: {installation.known(accounts)})",
            ("channels", index),
            hint=did_you_mean(account, accounts) or f"add `{account}:` under `{where}` in {installation.source}",
        )

    def check_flow_references(self) -> None:
        known = self.vocabulary.flows
        if known is None:
            return
        for name, kind in self.kinds.items():
            if kind not in (StepKind.CALL, StepKind.GOTO_FLOW):
                continue
            value = self.steps[name][kind.value]
            target = value if isinstance(value, str) else value.get("flow")
            path: Path = ("steps", name, kind.value) if isinstance(value, str) else ("steps", name, kind.value, "flow")
            if target not in known:
                self.report(
                    "FD206",
                    f"flow {target!r} is not among the flows validated with this one",
                    path,
                    hint=did_you_mean(target, known) or "deploy a flow with this id, or fix the name",
                )

    # -- graph --------------------------------------------------------------------

    def check_graph(self) -> None:
        if len(self.kinds) != len(self.steps):
            return  # a step without a kind has no edges to speak of; reported already
        graph: dict[str, list[str]] = {name: [] for name in self.steps}
        for edge in self._edges():
            if edge.target in graph:
                graph[edge.source].append(edge.target)
        start = self.data.get("start") if self.data.get("start") in self.steps else (self.order or [None])[0]
        if start is None:
            return
        reachable = _reachable(graph, start)
        # A misspelt target (FD201) makes its real target look unreachable: say it once.
        misspelt = any(d.code == "FD201" for d in self.out)
        for name in self.order:
            if name not in reachable and not misspelt:
                self.report(
                    "FD301",
                    f"step {name!r} can never run: no step leads to it",
                    ("steps", name),
                    key=True,
                )
        hot = {
            name: [t for t in targets if self.kinds[t] not in BLOCKING_KINDS]
            for name, targets in graph.items()
            if self.kinds[name] not in BLOCKING_KINDS and name in reachable
        }
        for cycle in _cycles(hot):
            loop = " -> ".join([*cycle, cycle[0]])
            self.report(
                "FD302",
                f"steps loop forever without waiting for anyone: {loop}",
                ("steps", cycle[0]),
                key=True,
            )

    # -- tests ----------------------------------------------------------------------

    def check_tests(self, tests: list[Any], base: Path) -> None:
        mockable = {
            # A keyword `classify` (no `chain`) never calls AI, so a mock for it would do nothing.
            "ai": {
                n
                for n, k in self.kinds.items()
                if k is StepKind.AI or (k is StepKind.CLASSIFY and self.steps[n]["classify"].get("chain"))
            },
            "http": {n for n, k in self.kinds.items() if k is StepKind.HTTP},
        }
        for i, test in enumerate(tests):
            mock = test.get("mock") or {}
            for family, names in mockable.items():
                for step in mock.get(family) or {}:
                    if step not in names:
                        self.report(
                            "FD211",
                            f"{describe((*base, i))} mocks {family} step {step!r},"
                            f" which is not an {family} step of this flow",
                            (*base, i, "mock", family, step),
                            key=True,
                            hint=did_you_mean(step, names)
                            or f"{family} steps here: {', '.join(sorted(names)) or 'none'}",
                        )


def _reachable(graph: Mapping[str, list[str]], start: str) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for target in graph[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """One representative cycle per strongly connected component (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(_cycle_path(graph, set(component), node))
    return found


def _cycle_path(graph: Mapping[str, list[str]], component: set[str], start: str) -> list[str]:
    """A readable path around the loop, starting and ending at ``start``."""
    parents: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in graph[node]:
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return list(reversed(path))
            if child in component and child not in parents:
                parents[child] = node
                queue.append(child)
    return [start]  # pragma: no cover - a component always closes
