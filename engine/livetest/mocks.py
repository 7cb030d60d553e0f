"""The test's mocks at the activity boundary, and a channel that keeps what the bot sent.

:class:`MockedCalls` registers activities under the names of the real
``flowdesk.call_ai`` and ``flowdesk.call_http``; each answers from the mocks of the
test that owns the conversation (:class:`MockBoard`, keyed by conversation id),
with the same :class:`~engine.flowtest.offline.OfflineAI` and
:class:`~engine.flowtest.offline.ScriptedHttp` the simulator uses. A mocked failure is
a non-retryable error, so no retry waits on the test server's clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from engine.channels.types import Capabilities, OutboundMessage, Receipt
from engine.flow.events import CallAI, CallFailure, CallHttp, HttpFailed, HttpResult, to_dict
from engine.flowtest.offline import OfflineAI, ScriptedHttp
from engine.runtime.activities import call_time
from engine.runtime.failures import Failure
from engine.runtime.types import AIInput, HttpInput


@dataclass
class TestMocks:
    """One test's answers for AI and HTTP steps."""

    __test__ = False  # not a pytest test class, despite its name

    ai: OfflineAI
    http: ScriptedHttp


@dataclass
class MockBoard:
    """The mocks of every conversation under test, by conversation id."""

    by_conversation: dict[str, TestMocks] = field(default_factory=dict)

    def mocks(self, conversation_id: str) -> TestMocks:
        found = self.by_conversation.get(conversation_id)
        if found is None:
            # Not a test's conversation: nothing could answer it the way the test means.
            raise ApplicationError(
                f"conversation {conversation_id!r} has no test mocks", type=Failure.NO_TEST_MOCKS, non_retryable=True
            )
        return found


class MockedCalls:
    """``flowdesk.call_ai`` and ``flowdesk.call_http``, answered from the test's mocks."""

    def __init__(self, board: MockBoard) -> None:
        self.board = board

    @activity.defn(name="flowdesk.call_ai")
    async def call_ai(self, data: AIInput) -> dict[str, Any]:
        """The chain's outcome as the simulator gets it: a mock, else the chain's offline providers."""
        outcome = self.board.mocks(data.conversation_id).ai(_ai_call(data.call), call_time())
        return to_dict(outcome)

    @activity.defn(name="flowdesk.call_http")
    async def call_http(self, data: HttpInput) -> dict[str, Any]:
        """The mocked response; a mocked timeout or a missing mock fails as the real activity would."""
        outcome = self.board.mocks(data.conversation_id).http(_http_call(data.call), call_time())
        if isinstance(outcome, HttpResult):
            return {"status": outcome.status, "body": outcome.body}
        assert isinstance(outcome, HttpFailed)
        kind = Failure.HTTP_TIMEOUT if outcome.reason == CallFailure.TIMEOUT else Failure.HTTP_ERROR
        raise ApplicationError(outcome.detail, type=kind, non_retryable=True)


def _ai_call(call: Mapping[str, Any]) -> CallAI:
    """The CallAI of an activity input (tuples where JSON made lists), as the real activity reads it."""
    fields = {k: v for k, v in call.items() if k != "kind"}
    intents = tuple((name, tuple(examples)) for name, examples in fields.get("intents", ()))
    return CallAI(
        **{
            **fields,
            "history": tuple(fields.get("history", ())),
            "context": tuple(fields.get("context", ())),
            "intents": intents,
        }
    )


def _http_call(call: Mapping[str, Any]) -> CallHttp:
    fields = {k: v for k, v in call.items() if k != "kind"}
    pairs = {key: tuple(tuple(pair) for pair in fields.get(key, ())) for key in ("headers", "query")}
    return CallHttp(**{**fields, **pairs})


@dataclass(frozen=True)
class Sent:
    """One message a channel took."""

    conversation_id: str
    sender: str
    text: str


class CollectingChannel:
    """An outbound channel that keeps what it sent; a repeated delivery key is not sent twice."""

    capabilities = Capabilities(choices=True)

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Sent] = []
        self._keys: set[str] = set()

    async def send(self, message: OutboundMessage) -> Receipt:
        if message.key in self._keys:
            return Receipt("duplicate")
        self._keys.add(message.key)
        self.sent.append(Sent(message.conversation_id, message.sender, message.text))
        return Receipt("sent", channel_message_id=f"{self.name}-{len(self.sent)}")

    def texts(self, conversation_id: str, sender: str = "bot") -> list[str]:
        """What ``sender`` sent to a conversation, in order."""
        return [s.text for s in self.sent if s.conversation_id == conversation_id and s.sender == sender]
