"""Secrets at the edge: password hashing (argon2id), opaque tokens and their stored hashes.

Only hashes reach the journal. Tokens are 256-bit random values; their SHA-256 is what the
core stores and compares (a fast hash is right for high-entropy tokens; passwords get argon2).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_match(stored_hash: str, token: str) -> bool:
    return hmac.compare_digest(stored_hash, token_hash(token))


def csrf_token(server_key: bytes, session_id: str) -> str:
    """A CSRF token bound to one operator session: HMAC of its id under the server's key."""
    return hmac.new(server_key, f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()
