"""The Sinatra mock's state and rules: who may log in and see what, over the seeded dataset."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pepharness.fixtures import (
    VIEW_GAME_HISTORY,
    VIEW_GAME_PROVIDERS,
    VIEW_GAMES_CATALOG,
    VIEW_ROUND_DETAILS,
    Dataset,
    Permission,
    generate,
    metadata_document,
)
from pepharness.mocks.core.clock import Clock
from pepharness.mocks.sinatra.catalog import Catalog, json_array, json_bytes
from pepharness.mocks.sinatra.errors import (
    BadCredentials,
    BadRequest,
    BasicUnauthorized,
    Forbidden,
    HistoryForbidden,
    InvalidParameters,
    Unauthorized,
)
from pepharness.mocks.sinatra.history import History, PageShare
from pepharness.mocks.sinatra.params import (
    CatalogQuery,
    Page,
    Query,
    integer,
    parse_catalog,
    parse_paged_history,
    parse_plain_history,
)
from pepharness.mocks.sinatra.tokens import InvalidToken, TokenIssuer
from pepharness.mocks.sinatra.users import Account, Users, resolve_permissions

REPLAY_BASE = "https://replay.sinatra.example/rounds"
MIN_SECRET_BYTES = 32
PARSED_QUERIES = 4096
RENDERED_SHARES = 8192


def seed_secret(seed: int) -> bytes:
    """The default token key: derived from the seed, so the same seed signs the same tokens."""
    return hashlib.sha256(f"pepharness-sinatra-jwt:{seed}".encode()).digest()


class SinatraBackend:
    """Users, tokens, catalog and history of one Sinatra mock; "now" is always `clock.now()`.

    The generated dataset never changes after construction (the same seed, anchor and round
    count always give the same data), so `reset` restores the only mutable state, the users,
    and keeps the dataset and its indexes.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        seed: int = 42,
        rounds: int = 4000,
        anchor: datetime | None = None,
        secret: bytes | None = None,
    ) -> None:
        key = seed_secret(seed) if secret is None else secret
        if len(key) < MIN_SECRET_BYTES:
            # RFC 7518 §3.2: an HS256 key has at least 256 bits.
            raise ValueError(f"the token secret needs at least {MIN_SECRET_BYTES} bytes")
        self.clock = clock
        self.seed = seed
        self.anchor = clock.now() if anchor is None else anchor
        self.data: Dataset = generate(seed, anchor=self.anchor, rounds=rounds)
        self.tokens = TokenIssuer(key)
        self.users = Users(self.data.users, self.data.brands)
        self.catalog = Catalog(self.data)
        self.history = History(self.data)
        self._metadata: dict[frozenset[int], bytes] = {}
        self._catalog_queries: dict[bytes, CatalogQuery] = {}
        self._rendered_shares: dict[tuple[int, int, int], bytes] = {}

    def reset(self) -> None:
        """Back to the seeded users; sessions of removed users stop working."""
        self.users.reset()

    # -- authentication --------------------------------------------------------------------

    def login(self, email: str, password: str) -> tuple[bytes, str]:
        """(the login document, a fresh `jwt-auth` token); 400 on bad credentials (D2)."""
        found = self.users.check(email, password)
        if found is None:
            raise BadCredentials()
        return found.login_json, self.tokens.issue(found.email, self.clock.now())

    def session(self, token: str | None) -> Account:
        """The account of a `jwt-auth` token; 401 unless it is ours, unexpired and its user
        still exists (D5)."""
        if not token:
            raise Unauthorized()
        try:
            email = self.tokens.subject(token, self.clock.now())
        except InvalidToken:
            raise Unauthorized() from None
        found = self.users.get(email)
        if found is None:
            raise Unauthorized()
        return found

    def basic(self, credentials: tuple[str, str] | None) -> Account:
        """The account of HTTP Basic credentials; 401 with a Basic challenge otherwise (D24)."""
        found = self.users.check(*credentials) if credentials is not None else None
        if found is None:
            raise BasicUnauthorized()
        return found

    def add_user(
        self, email: str, password: str, permissions: Sequence[object], operators: Sequence[int]
    ) -> Account:
        """A new user; ValueError for an unusable field, UserExists for a taken email."""
        return self.users.add(
            email, password, resolve_permissions(permissions), operators, self.clock.now()
        )

    # -- catalog ---------------------------------------------------------------------------

    def providers_json(self, account: Account) -> bytes:
        _require(account, VIEW_GAME_PROVIDERS)
        return self.catalog.providers_json

    def games_json(
        self, account: Account, args: Query | Callable[[], Query], raw: bytes | None = None
    ) -> bytes:
        """The catalog the user may see, filtered by the query's parameters (D9-D14). `args`
        may be a function giving them; with `raw`, the query string they were decoded from,
        a query string already parsed is not parsed again (D180)."""
        _require(account, VIEW_GAMES_CATALOG)
        query = self._catalog_queries.get(raw) if raw is not None else None
        if query is None:
            query = parse_catalog(args() if callable(args) else args)
            if raw is not None:
                if len(self._catalog_queries) >= PARSED_QUERIES:
                    self._catalog_queries.clear()  # bounded, whatever queries arrive
                self._catalog_queries[raw] = query
        operators = account.operators
        if query.operator_id is not None:
            operators = frozenset({_own_operator(account, query.operator_id)})
        return self.catalog.games_json(operators, query)

    def assets_json(self, account: Account, game_id: str) -> bytes:
        """The marketing assets of a game: a valid session is enough (D8); unknown is 400 (D7)."""
        assets = self.catalog.assets_json(game_id)
        if assets is None:
            raise BadRequest()
        return assets

    # -- history ---------------------------------------------------------------------------

    def metadata_json(self, account: Account) -> bytes:
        _require(account, VIEW_GAME_HISTORY)
        rendered = self._metadata.get(account.operators)
        if rendered is None:
            rendered = json_bytes(metadata_document(self.data, account.operators))
            self._metadata[account.operators] = rendered
        return rendered

    def plain_history(self, account: Account, args: Query) -> list[dict[str, Any]]:
        """The plain history: every selected round with all its transactions (D28)."""
        _require(account, VIEW_GAME_HISTORY)
        now = self.clock.now()
        query, filters = parse_plain_history(args, now.date())
        if filters.operator_id is not None:
            _own_operator(account, filters.operator_id)
        for brand_id in filters.brand_ids or ():
            brand = self.data.brand_by_id.get(brand_id)
            if brand is None:
                raise InvalidParameters()
            _own_operator(account, brand.operator_id)
        rounds = self.history.rounds(account.operators, query, filters, now)
        return [self.data.round_document(r) for r in rounds]

    def history_page(self, account: Account, args: Query) -> dict[str, Any]:
        """One page of the paginated history: `page_size` transactions (D17, D22)."""
        page, total, shares = self._history_page(account, args)
        return {
            "page_num": page.number,
            "size_per_page": page.size,
            "total_count": total,
            "responses": [self.data.round_document(s.round, s.transactions) for s in shares],
        }

    def history_page_json(self, account: Account, args: Query) -> bytes:
        """`history_page` as the JSON answered, byte for byte `json_bytes` of it; each round's
        share of a page is rendered once and kept (at most RENDERED_SHARES of them) (D183)."""
        page, total, shares = self._history_page(account, args)
        head = json_bytes(
            {"page_num": page.number, "size_per_page": page.size, "total_count": total}
        )
        responses = json_array(self._share_json(share) for share in shares)
        return head[:-1] + b',"responses":' + responses + b"}"

    def _history_page(self, account: Account, args: Query) -> tuple[Page, int, list[PageShare]]:
        if not account.may(VIEW_GAME_HISTORY):
            raise HistoryForbidden()
        now = self.clock.now()
        query, page = parse_paged_history(args, now.date())
        total, shares = self.history.page(account.operators, query, page, now)
        return page, total, shares

    def _share_json(self, share: PageShare) -> bytes:
        # The dataset never changes and its rounds and transactions live as long as it does:
        # a share is its round and its first transaction (by identity) and its length.
        transactions = share.transactions
        key = (id(share.round), id(transactions[0]) if transactions else 0, len(transactions))
        rendered = self._rendered_shares.get(key)
        if rendered is None:
            rendered = json_bytes(self.data.round_document(share.round, transactions))
            if len(self._rendered_shares) >= RENDERED_SHARES:
                self._rendered_shares.clear()  # bounded, whatever pages are asked
            self._rendered_shares[key] = rendered
        return rendered

    def round_details(
        self, account: Account, casino_id: str, game_id: str, round_id: str
    ) -> dict[str, Any]:
        """The replay link of a round of that game at that casino (D29)."""
        _require(account, VIEW_ROUND_DETAILS)
        casino = integer(casino_id)
        if casino is None:
            raise InvalidParameters()
        _own_operator(account, casino)
        if self.history.find(casino, game_id, round_id) is None:
            raise InvalidParameters()
        return {
            "status": "Success",
            "action": "url",
            "url": f"{REPLAY_BASE}/{casino}/{game_id}/{round_id}",
        }


def _require(account: Account, permission: Permission) -> None:
    if not account.may(permission):
        raise Forbidden()


def _own_operator(account: Account, operator_id: int) -> int:
    """`operator_id` if it is one of the user's operators; 403 otherwise (D9)."""
    if operator_id not in account.operators:
        raise Forbidden()
    return operator_id
