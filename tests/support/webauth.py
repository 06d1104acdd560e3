"""Basic auth for tests: web config text with bcrypt users, and the header to log in."""

from __future__ import annotations

import base64

import bcrypt
import yaml


def users_yaml(**passwords: str) -> str:
    """A web config with these users; cost 4, the cheapest bcrypt allows."""
    return yaml.safe_dump({"basic_auth_users": {
        user: bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        for user, password in passwords.items()}})


def basic(user: str, password: str) -> str:
    """The Authorization header's value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
