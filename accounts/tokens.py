"""Personal API token format: ``mlp_<8-char prefix>_<secret>``.

The prefix is stored in clear so a token can be found and recognised (in admin,
in logs, by secret scanners); the whole token is stored only as a SHA-256 hash.
A high-entropy random secret needs no slow hash, and SHA-256 keeps lookups cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

TOKEN_PREFIX = "mlp_"  # noqa: S105 (the public prefix, not a secret)
PREFIX_LENGTH = 8
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class ParsedToken:
    """The parts of a plaintext token."""

    prefix: str
    plaintext: str


def looks_like_api_token(value: str) -> bool:
    """True when ``value`` has the API token shape (not a JWT or a password)."""
    return value.startswith(TOKEN_PREFIX)


def generate_token() -> ParsedToken:
    """A new random token (prefix + 256-bit secret)."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    return ParsedToken(prefix=prefix, plaintext=f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}")


def parse_token(value: str) -> ParsedToken | None:
    """Split a plaintext token into its parts; None when it is malformed."""
    if not looks_like_api_token(value):
        return None
    rest = value[len(TOKEN_PREFIX) :]
    prefix, sep, secret = rest[:PREFIX_LENGTH], rest[PREFIX_LENGTH : PREFIX_LENGTH + 1], rest[PREFIX_LENGTH + 1 :]
    if sep != "_" or len(prefix) != PREFIX_LENGTH or not secret or any(c not in _PREFIX_ALPHABET for c in prefix):
        return None
    return ParsedToken(prefix=prefix, plaintext=value)


def hash_token(plaintext: str) -> str:
    """Hex SHA-256 of a plaintext token."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def hash_matches(plaintext: str, stored_hash: str) -> bool:
    """Constant-time comparison of a token against a stored hash."""
    return hmac.compare_digest(hash_token(plaintext), stored_hash)
