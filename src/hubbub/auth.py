"""Authentication: who may register an identity, and who may act as it again.

An agent's passport names its scheme (``Passport.auth.scheme``) and carries a
claim (``Passport.auth.claim``) when it registers; the hub checks the claim
with the :class:`AuthAdapter` for that scheme and stores only the scheme,
never the claim. Every later connection that acts as the agent (a ``hello``
or an ``attach``) presents the claim again and is checked again.

* :class:`NoAuth` — scheme ``"none"``: anyone may act as anyone. Fine on a
  laptop; ``hubbub serve`` refuses it on a non-loopback address unless told.
* :class:`ApiKeyAuth` — scheme ``"api_key"``: ``claim={"api_key": "..."}``,
  one key per agent name (or ``"*"`` for every name). Keys are kept as
  SHA-256 hashes and compared in constant time.
* Your own: anything with a ``scheme`` and ``async validate(passport, claim)``
  that raises :class:`~hubbub.errors.AuthError`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .errors import AuthError, UsageError
from .model.identity import Passport

__all__ = ["ApiKeyAuth", "AuthAdapter", "AuthRegistry", "NoAuth"]


@runtime_checkable
class AuthAdapter(Protocol):
    """Checks a claim for one scheme; raises :class:`AuthError` to refuse."""

    scheme: str

    async def validate(self, passport: Passport, claim: Mapping[str, Any]) -> None:
        """Return if ``claim`` proves the right to act as ``passport``; raise AuthError if not."""
        ...


class NoAuth:
    """Scheme ``"none"``: every claim passes."""

    scheme = "none"

    async def validate(self, passport: Passport, claim: Mapping[str, Any]) -> None:
        return None


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeyAuth:
    """Scheme ``"api_key"``: a key per agent name (``"*"`` matches any name), kept hashed."""

    scheme = "api_key"

    def __init__(self, keys: Mapping[str, str]) -> None:
        if not keys:
            raise UsageError("ApiKeyAuth needs at least one name: key pair")
        for name, key in keys.items():
            if not isinstance(key, str) or len(key) < 16:
                raise UsageError(f"the API key for {name!r} must be a string of at least 16 characters")
        self._hashes = {name: _digest(key) for name, key in keys.items()}

    @classmethod
    def from_file(cls, path: str | Path) -> ApiKeyAuth:
        """Keys from a file: a JSON object ``{"name": "key"}``, or lines ``name: key`` (``#`` comments)."""
        try:
            text = Path(path).read_text(encoding="utf-8-sig")  # a byte-order mark is not part of a name
        except OSError as exc:
            raise UsageError(f"cannot read the API key file {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"API key file {path} is not UTF-8 text ({exc.reason}); save it as UTF-8"
            ) from exc
        keys: dict[str, str] = {}
        if text.lstrip().startswith("{"):
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UsageError(f"API key file {path} is not valid JSON: {exc}") from exc
            if not isinstance(loaded, dict):
                raise UsageError(f"API key file {path} must hold a JSON object of name: key")
            keys = {str(k): v for k, v in loaded.items()}
        else:
            lines: dict[str, int] = {}
            for number, line in enumerate(text.splitlines(), 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                name, sep, key = (part.strip() for part in line.partition(":"))
                if not sep or not name or not key:
                    raise UsageError(f"API key file {path}, line {number}: write 'name: key'")
                if name in lines:
                    raise UsageError(
                        f"API key file {path}, line {number}: {name!r} already has a key (line "
                        f"{lines[name]}); one key per name"
                    )
                if len(key) > 1 and key[0] == key[-1] and key[0] in "'\"":
                    raise UsageError(f"API key file {path}, line {number}: write the key without quotes")
                lines[name] = number
                keys[name] = key
        if not keys:
            raise UsageError(f"API key file {path} holds no keys: write lines 'name: key'")
        return cls(keys)

    async def validate(self, passport: Passport, claim: Mapping[str, Any]) -> None:
        key = claim.get("api_key")
        if not isinstance(key, str) or not key:
            raise AuthError(
                f"{passport.name} must present claim {{'api_key': ...}} for scheme api_key",
                agent_id=passport.agent_id,
                reason="missing_key",
            )
        expected = self._hashes.get(passport.name, self._hashes.get("*"))
        # Compare against something even for unknown names, so timing does not reveal them.
        if not hmac.compare_digest(_digest(key), expected or b"\0" * 32) or expected is None:
            raise AuthError(
                f"wrong API key for {passport.name}", agent_id=passport.agent_id, reason="bad_key"
            )


class AuthRegistry:
    """The schemes a hub accepts; by default only ``"none"``."""

    def __init__(self, adapters: Iterable[AuthAdapter] | None = None) -> None:
        self._adapters: dict[str, AuthAdapter] = {}
        for adapter in adapters if adapters is not None else [NoAuth()]:
            if not isinstance(adapter, AuthAdapter):
                raise UsageError(f"{adapter!r} is not an AuthAdapter: it needs .scheme and async validate()")
            self._adapters[adapter.scheme] = adapter

    @property
    def schemes(self) -> list[str]:
        return sorted(self._adapters)

    @property
    def open(self) -> bool:
        """True when anyone may act as anyone (scheme ``"none"`` is accepted)."""
        return "none" in self._adapters

    async def check(self, passport: Passport, scheme: str, claim: Mapping[str, Any]) -> None:
        """Raise :class:`AuthError` unless ``claim`` under ``scheme`` proves ``passport``."""
        adapter = self._adapters.get(scheme)
        if adapter is None:
            raise AuthError(
                f"auth scheme {scheme!r} is not accepted by this hub; it accepts {self.schemes}",
                agent_id=passport.agent_id,
                reason="unknown_scheme",
            )
        await adapter.validate(passport, claim)
