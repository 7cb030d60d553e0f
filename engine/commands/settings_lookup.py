"""Which ``flowdesk.yaml`` a command that checks flows reads: one rule for ``validate`` and ``test``.

``--settings FILE`` when given; else a ``flowdesk.yaml`` beside the flows (in a
directory named as PATH, or in the directory of a PATH, or in that directory's
parent: ``flows/`` sits next to ``flowdesk.yaml`` in a project); else the one in
the working directory; else none, and the installation checks are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from engine.settings import DEFAULT_FILE

#: Printed when no settings file was found, so nobody mistakes "not checked" for "fine".
SKIPPED_NOTE = (
    f"note: no {DEFAULT_FILE} beside the flows or in the working directory, so business_hours() calendars,"
    " settings.* names and AI profiles were not checked (pass --settings FILE to check them)"
)


def _candidates(path: Path) -> Iterable[Path]:
    directory = path if path.is_dir() else path.parent
    yield directory / DEFAULT_FILE
    yield directory.parent / DEFAULT_FILE


def find_settings(explicit: str | None, paths: Iterable[str | Path]) -> Path | None:
    """The settings file for flows under ``paths``, or None when there is none.

    An ``explicit`` file is returned as given (reading it reports a missing one).
    """
    if explicit is not None:
        return Path(explicit)
    for raw in paths:
        for candidate in _candidates(Path(raw)):
            if candidate.is_file():
                return candidate
    default = Path(DEFAULT_FILE)
    return default if default.is_file() else None


__all__ = ["SKIPPED_NOTE", "find_settings"]
