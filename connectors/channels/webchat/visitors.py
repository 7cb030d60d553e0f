"""Web-chat visitor tokens and host-site identity checks.

A visitor is anonymous: the widget keeps a token in the browser's localStorage
and presents it on every connection. The token is the visitor id plus an HMAC
of it under the server's secret, so a visitor cannot pose as another by editing
their storage. A host site with logged-in users may also pass
``identity_hash = hex(HMAC-SHA256(identity secret, user id))``, which links the
visitor to that user's contact (``../shared/CHANNELS.md``, web chat).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid
from pathlib import Path

TOKEN_VERSION = "v1"


class VisitorTokens:
    """Issues and checks signed visitor tokens (``v1.<visitor id>.<signature>``)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the visitor-token secret must be at least 16 bytes")
        self._secret = secret

    def issue(self) -> tuple[str, str]:
        """A new visitor: (visitor id, token)."""
        visitor = uuid.uuid4().hex
        return visitor, self.token(visitor)

    def token(self, visitor: str) -> str:
        return f"{TOKEN_VERSION}.{visitor}.{self._sign(visitor)}"

    def verify(self, token: str | None) -> str | None:
        """The visitor id a token was issued for, or None if it is missing, malformed or forged."""
        if not token or len(token) > 128:
            return None
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_VERSION or not parts[1].isalnum():
            return None
        if not hmac.compare_digest(parts[2], self._sign(parts[1])):
            return None
        return parts[1]

    def _sign(self, visitor: str) -> str:
        digest = hmac.new(self._secret, f"visitor:{visitor}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def identity_matches(identity_secret: str, user_id: str, identity_hash: str) -> bool:
    """Whether a host site vouched for ``user_id`` (constant-time comparison)."""
    expected = hmac.new(identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, identity_hash.lower())


def load_or_create_secret(path: Path) -> bytes:
    """The node's visitor-token secret, made once and kept in the data directory.

    Nodes of a cluster must share it (set ``channels.webchat.secret`` instead):
    a token from one node must verify on another.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    # Created private from the start, never world-readable even for a moment.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret
