"""What the web config's checks keep while the exporter runs: the rate limit's
bucket and the passwords already verified.

The web config itself (`config.webconfig.WebConfig`) is an immutable reading
of a file; this is the state beside it, owned by the reload owner
(`exporter.live`), which hands an unchanged part on to the next config: a
reload must not refill the bucket (a POST /-/reload between requests got round
the limit) nor make the dummy hash again (over a second at bcrypt cost 14).

bcrypt is the only hash the toolkit accepts; checking one costs tens of
milliseconds by design, so a verified (user, password) pair is remembered as
a salted SHA-256 for the life of the users, as the toolkit does. An unknown
user costs the same bcrypt check against a dummy hash, so response time does
not tell which users exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Mapping

import bcrypt

from exporter.config.webconfig import BCRYPT_MAX_PASSWORD, RateLimit, WebConfig


class RateLimiter:
    """The toolkit's token bucket: `burst` requests at once, one more per `interval`."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._tokens = float(limit.burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        interval, burst = self.limit.interval, self.limit.burst
        with self._lock:
            now = time.monotonic()
            self._tokens = min(burst, self._tokens + (now - self._last) / interval)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


class Passwords:
    """Basic-auth checks against the configured bcrypt hashes, verified pairs remembered."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self.users = users
        self._verified: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._salt = os.urandom(16)
        self._dummy = b""
        if users:
            # As costly as the dearest real hash, so an unknown user takes as long.
            cost = max(int(hashed[4:6]) for hashed in users.values())
            self._dummy = bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=cost))

    def authorized(self, header: str | None) -> bool:
        """True when no users are configured or the Basic credentials match."""
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        secret = password.encode()
        hashed = self.users.get(user)
        key = hashlib.sha256(self._salt + f"{user}\0{password}".encode()).digest()
        with self._lock:
            known = self._verified.get(user) if hashed is not None else None
        if known is not None and hmac.compare_digest(known, key):
            return True
        # Unknown users and over-long passwords cost one bcrypt check too.
        too_long = len(secret) > BCRYPT_MAX_PASSWORD
        against = self._dummy if hashed is None or too_long else hashed
        try:
            matched = bcrypt.checkpw(secret[:BCRYPT_MAX_PASSWORD], against)
        except ValueError:  # a malformed header never reaches here; belt and braces
            return False
        if not matched or hashed is None or too_long:
            return False
        with self._lock:
            self._verified[user] = key
        return True


class Gate:
    """The running checks of one web config: rate limit, then passwords."""

    def __init__(self, web: WebConfig, previous: Gate | None = None) -> None:
        """`previous`, the running gate: what the new config leaves unchanged is kept."""
        self.web = web
        limiter = previous.limiter if previous is not None else None
        if web.rate_limit is None:
            self.limiter: RateLimiter | None = None
        elif limiter is not None and limiter.limit == web.rate_limit:
            self.limiter = limiter
        else:
            self.limiter = RateLimiter(web.rate_limit)
        self.passwords: Passwords = (
            previous.passwords
            if previous is not None and dict(previous.passwords.users) == dict(web.users)
            else Passwords(web.users))

    def allow(self) -> bool:
        """The rate limit: False when the bucket is empty."""
        return self.limiter is None or self.limiter.allow()

    def authorized(self, header: str | None) -> bool:
        return self.passwords.authorized(header)
