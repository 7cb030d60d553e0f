"""``flowdesk test --live``: flow tests played through the runtime instead of the simulator.

Above both :mod:`engine.flow` (the turn logic, which must not import the runtime)
and :mod:`engine.runtime` (the workflow and activities it drives).
"""

from __future__ import annotations

from engine.livetest.runner import LiveSession, LiveTests, channels_of_tests

__all__ = ["LiveSession", "LiveTests", "channels_of_tests"]
