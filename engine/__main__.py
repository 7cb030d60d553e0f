"""``python -m engine``: the ``flowdesk`` command without an installed console script."""

from __future__ import annotations

from engine.cli import main

if __name__ == "__main__":
    main()
