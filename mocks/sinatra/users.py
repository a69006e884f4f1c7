"""Sinatra's users: the seeded ones and those added through the admin API, with their logins."""

from __future__ import annotations

import dataclasses
import hmac
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pepharness.fixtures import PERMISSIONS, Brand, Permission, User, login_document
from pepharness.mocks.core.state import SharedState
from pepharness.mocks.sinatra.catalog import json_bytes

MAX_EMAIL_LENGTH = 254
MAX_PASSWORD_LENGTH = 1024

_PERMISSION_BY_ID = {p.id: p for p in PERMISSIONS}
_PERMISSION_BY_NAME = {p.name.casefold(): p for p in PERMISSIONS}


class UserExists(LookupError):
    """A user with that email is already there."""


@dataclass(frozen=True, slots=True)
class Account:
    """A user as the routes need them: permission ids and operators as sets, the login body
    rendered once."""

    user: User
    permission_ids: frozenset[int]
    operators: frozenset[int]
    login_json: bytes

    @property
    def email(self) -> str:
        return self.user.email

    def may(self, permission: Permission) -> bool:
        return permission.id in self.permission_ids

    def to_json(self) -> dict[str, object]:
        """What the admin API shows of a user: never the password."""
        return {
            "id": self.user.id,
            "email": self.user.email,
            "permissions": [p.name for p in self.user.permissions],
            "available_operators": list(self.user.available_operators),
        }


def account(user: User) -> Account:
    return Account(
        user,
        frozenset(p.id for p in user.permissions),
        frozenset(user.available_operators),
        json_bytes(login_document(user)),
    )


def resolve_permissions(values: Iterable[object]) -> tuple[Permission, ...]:
    """Permissions named by id (an integer) or by name (case-insensitive), in PERMISSIONS order;
    ValueError naming the first unknown one."""
    chosen: set[Permission] = set()
    for value in values:
        permission = None
        if isinstance(value, int) and not isinstance(value, bool):
            permission = _PERMISSION_BY_ID.get(value)
        elif isinstance(value, str):
            permission = _PERMISSION_BY_NAME.get(value.casefold())
        if permission is None:
            known = ", ".join(f"{p.id} {p.name!r}" for p in PERMISSIONS)
            raise ValueError(f"unknown permission {value!r}; known: {known}")
        chosen.add(permission)
    return tuple(p for p in PERMISSIONS if p in chosen)


def _utf8(text: str) -> bytes:
    # JSON can carry lone surrogates ("\ud800"); they must not break a comparison.
    return text.encode("utf-8", "surrogatepass")


class Users:
    """Every user by email. Thread-safe: adding replaces the mapping, readers never lock."""

    def __init__(self, seeded: Sequence[User], brands: Sequence[Brand]) -> None:
        self._seeded = {user.email: account(user) for user in seeded}
        self._brands = brands
        self._by_email = dict(self._seeded)
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Only the seeded users again."""
        with self._lock:
            self._by_email = dict(self._seeded)

    def get(self, email: str) -> Account | None:
        return self._by_email.get(email)

    def check(self, email: str, password: str) -> Account | None:
        """The account whose email and password these are, else None."""
        found = self._by_email.get(email)
        if found is None or not hmac.compare_digest(_utf8(found.user.password), _utf8(password)):
            return None
        return found

    def all(self) -> list[Account]:
        return list(self._by_email.values())

    def add(
        self,
        email: str,
        password: str,
        permissions: Sequence[Permission],
        operators: Sequence[int],
        now: datetime,
    ) -> Account:
        """A new user of `operators`, in the organization of the first operator that has one;
        ValueError when a field is unusable, UserExists when the email is taken."""
        if not email or len(email) > MAX_EMAIL_LENGTH or ":" in email:
            # RFC 7617: a user-id with a colon cannot be sent with Basic auth.
            raise ValueError(f"email must be 1-{MAX_EMAIL_LENGTH} characters without ':'")
        if not password or len(password) > MAX_PASSWORD_LENGTH:
            raise ValueError(f"password must be 1-{MAX_PASSWORD_LENGTH} characters")
        try:
            email.encode(), password.encode()
        except UnicodeEncodeError:
            raise ValueError("email and password must be valid Unicode text") from None
        brand = next((b for op in operators for b in self._brands if b.operator_id == op), None)
        with self._lock:
            if email in self._by_email:
                raise UserExists(f"a user with email {email!r} already exists")
            user = User(
                id=max((a.user.id for a in self._by_email.values()), default=0) + 1,
                email=email,
                password=password,
                first_name=email.partition("@")[0],
                last_name="",
                permissions=tuple(permissions),
                available_operators=tuple(dict.fromkeys(operators)),
                organization_id=brand.organization_id if brand else -1,
                organization_name=brand.organization_name if brand else "",
                last_login=int(now.timestamp()) * 1000,
            )
            added = account(user)
            self._by_email = {**self._by_email, email: added}
        return added


_ADDED = "sinatra.users"


def _user_json(user: User) -> dict[str, Any]:
    data = dataclasses.asdict(user)
    data["permissions"] = [p.id for p in user.permissions]
    return data


def _user_of(data: dict[str, Any]) -> User:
    data = {**data, "permissions": tuple(_PERMISSION_BY_ID[i] for i in data["permissions"])}
    data["available_operators"] = tuple(data["available_operators"])
    data["available_vendors"] = tuple(data["available_vendors"])
    return User(**data)


class SharedUsers(Users):
    """`Users` whose additions are kept in a `SharedState`, so the users added through any
    worker's admin API log in on every worker (D203)."""

    def __init__(self, state: SharedState, seeded: Sequence[User], brands: Sequence[Brand]):
        super().__init__(seeded, brands)
        self._state = state
        self._seen = -1
        if not state.attached:  # attached: another worker's copy may have added users (D217)
            with state.lock:
                state.clear_records(_ADDED)

    def _sync(self) -> None:
        if self._state.records_generation != self._seen:
            with self._state.lock:
                self._load()

    def _load(self) -> None:
        """The seeded users and every added one (hold the state's lock)."""
        generation = self._state.records_generation
        added = [account(_user_of(data)) for data in self._state.records(_ADDED)]
        self._by_email = {**self._seeded, **{a.email: a for a in added}}
        # Only now: a thread that sees this generation must find these users.
        self._seen = generation

    def reset(self) -> None:
        with self._state.lock:
            self._state.clear_records(_ADDED)
            self._load()

    def get(self, email: str) -> Account | None:
        self._sync()
        return super().get(email)

    def check(self, email: str, password: str) -> Account | None:
        self._sync()
        return super().check(email, password)

    def all(self) -> list[Account]:
        self._sync()
        return super().all()

    def add(
        self,
        email: str,
        password: str,
        permissions: Sequence[Permission],
        operators: Sequence[int],
        now: datetime,
    ) -> Account:
        with self._state.lock:
            self._load()
            added = super().add(email, password, permissions, operators, now)
            self._state.add_record(_ADDED, _user_json(added.user))
            self._seen = self._state.records_generation
        return added
