"""Every rule the Sinatra suite checks: name, level, and the seed section or decision behind it.

"seed" is `003_318008f88bc30fc7.txt` ("Games from Sinatra"); D-numbers are the rows of
contracts/README.md's decisions table.
"""

from __future__ import annotations

from pepharness.suites.rules import Level, Rule, RuleCatalog

MUST, SHOULD, INFO = Level.MUST, Level.SHOULD, Level.INFO

RULES = RuleCatalog("sinatra")
add = RULES.add

# -- schemathesis' built-in checks, run over every operation of contracts/sinatra.yaml -----------

NOT_A_SERVER_ERROR = add(
    "check_not_a_server_error", MUST,
    "seed: every table lists 500 only as 'internal server error'; D32",
    "No input, valid or not, makes the service answer 5xx.",
)
STATUS_CODE_CONFORMANCE = add(
    "check_status_code_conformance", MUST,
    "seed: the 'Response codes' table of each operation; contracts/sinatra.yaml",
    "Every status answered is documented for its operation.",
)
CONTENT_TYPE_CONFORMANCE = add(
    "check_content_type_conformance", MUST,
    "seed: JSON example and error bodies; contracts/sinatra.yaml",
    "Every body has the documented media type (application/json).",
)
RESPONSE_SCHEMA_CONFORMANCE = add(
    "check_response_schema_conformance", MUST,
    "seed: example responses; D15, D16, D22; contracts/sinatra.yaml schemas",
    "Every body matches the schema of its operation and status.",
)
RESPONSE_HEADERS_CONFORMANCE = add(
    "check_response_headers_conformance", MUST,
    "seed 'Log in user': jwt-auth response header; D24, D26; contracts/sinatra.yaml headers",
    "Declared response headers are present and well-formed.",
)
NEGATIVE_DATA_REJECTION = add(
    "check_negative_data_rejection", MUST,
    "D10, D17: a parameter that cannot be parsed is 400, one that is not allowed 422",
    "Input that breaks the contract is refused with a 4xx.",
)
POSITIVE_DATA_ACCEPTANCE = add(
    "check_positive_data_acceptance", MUST,
    "contracts/sinatra.yaml parameters; D2, D7, D9, D17, D29 (the documented refusals of "
    "well-formed input)",
    "Input that fits the contract is accepted, or refused only as documented.",
)
IGNORED_AUTH = add(
    "check_ignored_auth", MUST,
    "seed: jwt-auth 'required'; D5; the paginated history's Basic (D24)",
    "An operation that documents authentication does not answer without it.",
)
UNSUPPORTED_METHOD = add(
    "check_unsupported_method", SHOULD,
    "D31: 405 'method not allowed'; RFC 9110 §15.5.6 (a 405 carries Allow)",
    "An undocumented method on a documented path is 405 with an Allow header.",
)
ALLOW_HEADER_CONFORMANCE = add(
    "check_allow_header_conformance", SHOULD,
    "RFC 9110 §9.3.7 and §10.2.1: OPTIONS names the methods of the resource in Allow",
    "OPTIONS advertises exactly the documented methods (HEAD and OPTIONS aside).",
)

SCHEMATHESIS_CHECKS: dict[str, Rule] = {
    rule.name.removeprefix("check_"): rule
    for rule in (
        NOT_A_SERVER_ERROR,
        STATUS_CODE_CONFORMANCE,
        CONTENT_TYPE_CONFORMANCE,
        RESPONSE_SCHEMA_CONFORMANCE,
        RESPONSE_HEADERS_CONFORMANCE,
        NEGATIVE_DATA_REJECTION,
        POSITIVE_DATA_ACCEPTANCE,
        IGNORED_AUTH,
        UNSUPPORTED_METHOD,
        ALLOW_HEADER_CONFORMANCE,
    )
}
"""Schemathesis check name → the rule it reports as."""

# -- authentication ------------------------------------------------------------------------------

ISSUED_TOKEN_OPENS = add(
    "check_issued_token_opens_protected_operation", MUST,
    "seed 'Log in user': 'This header value must be used in subsequent requests'; D4",
    "The jwt-auth token from a login opens every jwt-auth operation.",
)
MISSING_TOKEN_REFUSED = add(
    "check_missing_token_is_401", MUST,
    "seed: jwt-auth 'required', 401 'unauthorized'; D5",
    "A jwt-auth operation without a token is 401 {\"errMsg\": \"unauthorized\"}.",
)
FORGED_TOKEN_REFUSED = add(
    "check_forged_token_is_401", MUST,
    "D5; RFC 8725 §3.1-3.2 (verify the signature with an allowed algorithm)",
    "A token signed with another key is 401 'unauthorized'.",
)
TRUNCATED_TOKEN_REFUSED = add(
    "check_truncated_token_is_401", MUST,
    "D5: a truncated token is 401 'unauthorized'",
    "A token cut short is 401 'unauthorized'.",
)
ALG_NONE_TOKEN_REFUSED = add(
    "check_alg_none_token_is_401", MUST,
    "D5; RFC 8725 §2.1/§3.1 and RFC 7519 §6 (reject 'alg: none')",
    "An unsigned token (alg none) with valid claims is 401 'unauthorized'.",
)
BASIC_MISSING_REFUSED = add(
    "check_paginated_history_without_basic_is_401", MUST,
    "seed 'paginated response': Authorization Basic 'required', 401 'unauthorized'; D24",
    "The paginated history without credentials is 401.",
)
BASIC_WRONG_REFUSED = add(
    "check_paginated_history_with_wrong_basic_is_401", MUST,
    "seed 'paginated response': 401 'Authentication information is missing or invalid'; D24",
    "The paginated history with a wrong password is 401.",
)
JWT_DOES_NOT_OPEN_BASIC = add(
    "check_paginated_history_refuses_jwt_alone", MUST,
    "seed 'paginated response': HTTP Basic, not jwt-auth; D24",
    "A jwt-auth token without Basic credentials does not open the paginated history.",
)
BASIC_CHALLENGE = add(
    "check_basic_401_carries_challenge", SHOULD,
    "RFC 7617 §2 / RFC 9110 §11.6.1: a 401 carries WWW-Authenticate: Basic realm=…; D24",
    "The paginated history's 401 challenges for Basic with a realm.",
)
BAD_LOGIN_IS_400 = add(
    "check_bad_login_is_400_username_or_password_incorrect", MUST,
    "seed 'Log in user': 400 'Username or Password incorrect'; D2 (never 401)",
    "A wrong password or unknown email is 400 {\"errMsg\": \"Username or Password incorrect\"}.",
)
LOGIN_RETURNS_TOKEN = add(
    "check_login_returns_jwt_auth_header", MUST,
    "seed 'Log in user': 'the system returns a jwt-auth header'; D4",
    "A good login answers 200, the user document, and the token in the jwt-auth header.",
)
MISSING_PERMISSION_IS_403 = add(
    "check_missing_permission_is_403", MUST,
    "seed: 403 'forbidden_operation' (the paginated history: 'forbidden'); D9",
    "A user without the permission gets 403 with the documented text.",
)

# -- token lifetime ------------------------------------------------------------------------------

TOKEN_LIFETIME = add(
    "check_token_lifetime_is_20_minutes", MUST,
    "seed 'Log in user': 'available for only 20 minutes'; D4 (exp = iat + 1200)",
    "The token's own claims give it exactly 20 minutes (exp - iat == 1200).",
)
TOKEN_EXPIRES = add(
    "check_token_expires_after_20_minutes", MUST,
    "seed: 'The session ID is valid for only 20 minutes'; D4 (accepted at 19:59, refused from "
    "20:00)",
    "A token still works at 19:59 and is refused (401) at 20:01.",
    exclusive=True,
)

# -- pagination ----------------------------------------------------------------------------------

PAGES_PARTITION = add(
    "check_pages_partition_the_transactions", MUST,
    "seed 'paginated response': page_size is 'the number of transactions per page'; D22, D23, D27",
    "Walking the pages yields every transaction of the window exactly once "
    "(identity: round_id, trans_id, type).",
)
PAGE_ENVELOPE = add(
    "check_page_envelope_agrees", MUST,
    "seed 'paginated response' example (page_num, size_per_page, total_count); D22",
    "page_num and size_per_page echo the request; total_count is the window's transactions.",
)
PAGE_SIZE_BOUND = add(
    "check_page_holds_at_most_page_size_transactions", MUST,
    "seed: page_size is 'the number of transactions per page, not the number of rounds'; D22",
    "No page holds more than page_size transactions.",
)
PAST_THE_END_EMPTY = add(
    "check_page_past_the_end_is_empty", MUST,
    "D22, D27: pages partition the window, so a page past the last holds nothing",
    "A page after the last one is 200 with no transaction.",
)
PAGE_BOUNDS = add(
    "check_page_bounds_are_enforced", MUST,
    "seed: page_number/page_size 'Must be a number greater than 0'; D17 (< 1 or > 10000: 422, "
    "not an integer: 400)",
    "page_number or page_size below 1 is 422, not an integer is 400.",
)

# -- catalog filters -----------------------------------------------------------------------------

FILTER_SUBSET = add(
    "check_filter_results_are_subset_of_catalog", MUST,
    "D12: every filter narrows the user's catalog",
    "Whatever the filters, the result is part of the unfiltered catalog.",
)
GAME_NAME_FILTER = add(
    "check_game_name_is_case_insensitive_substring", MUST,
    "seed 'Retrieve available games': 'mega' finds 'Mega 1, 1 Mega, Omega 1'; D14",
    "game_name returns exactly the games whose name contains it, ignoring case.",
)
GAME_IDENTIFIRE_FILTER = add(
    "check_game_identifire_matches_id_or_name", MUST,
    "seed 'Retrieve available games': game_identifire (sic) 'text within them (id/name)'; D13",
    "game_identifire returns exactly the games whose id or name contains it.",
)
GAME_IDS_FILTER = add(
    "check_game_ids_returns_exactly_those_games", MUST,
    "seed 'Retrieve available games': game_ids, 'comma separated game ids to fetch'",
    "game_ids returns exactly the listed games that are in the catalog.",
)
DATE_FROM_MONOTONE = add(
    "check_date_from_is_monotone", MUST,
    "seed: date_from, 'games added or updated after the specified date'; D11",
    "A later date_from never returns a game an earlier one does not.",
)
DATE_FROM_ON_OR_AFTER = add(
    "check_date_from_keeps_games_released_on_or_after", SHOULD,
    "D11 (inferred): a game is returned when its releaseDate is on or after date_from",
    "date_from returns exactly the games released on or after it.",
)
SUB_PROVIDER_FILTER = add(
    "check_sub_provider_selects_providers_games", MUST,
    "seed 'Retrieve available games': sub_provider, provider IDs 'separated by commas'",
    "sub_provider=a,b is the union of sub_provider=a and sub_provider=b, and providers "
    "share no game.",
)

# -- rate limiting -------------------------------------------------------------------------------

BURST_IS_429 = add(
    "check_burst_above_rate_limit_is_429_slow_down", MUST,
    "seed 'paginated response': 'We have rate limit for this endpoint', 429 'slow down'; D26",
    "Requests above the limit are 429 {\"errMsg\": \"slow down\"}.",
    exclusive=True,
)
RETRY_AFTER = add(
    "check_429_carries_valid_retry_after", SHOULD,
    "RFC 6585 §4, RFC 9110 §10.2.3; D26 (whole seconds)",
    "A 429 says when to retry: Retry-After as delay-seconds or an HTTP-date, within the period.",
    exclusive=True,
)
BURST_NO_SERVER_ERROR = add(
    "check_burst_never_answers_5xx", MUST,
    "seed: 429 is the documented answer to too many requests; D32",
    "A burst above the limit never gets a 5xx.",
    exclusive=True,
)
RATE_LIMIT_RECOVERS = add(
    "check_rate_limit_recovers_after_retry_after", MUST,
    "D26: a request stops counting one period after it",
    "After waiting Retry-After (or one period), the next request is served.",
    exclusive=True,
)

# -- history windows and parameters --------------------------------------------------------------

SIX_MONTHS_ONLY = add(
    "check_history_reaches_back_six_months_only", MUST,
    "seed 'paginated response': 'for the past six months'; D19",
    "No round older than six months is ever returned.",
)
OLD_FROM_CLAMPED = add(
    "check_history_older_from_is_clamped", SHOULD,
    "D19 (inferred): an older `from` is clamped to six months, never refused",
    "from a year ago answers 200, the same rounds as from six months ago.",
)
FROM_TO_PAIRED = add(
    "check_from_and_to_go_together", MUST,
    "seed: from 'must be set if the parameter to is set' (and the reverse); D17: 422 "
    "'Invalid parameters'",
    "from without to, or to without from, is 422 'Invalid parameters'.",
)
TIME_PERIODS_ACCEPTED = add(
    "check_each_time_period_is_accepted", MUST,
    "seed: time_period 'Valid values: today, yesterday, last 7 days, last 30 days'; D21",
    "Each documented time_period is 200.",
)
UNKNOWN_TIME_PERIOD_400 = add(
    "check_unknown_time_period_is_400", MUST,
    "seed: time_period valid values; D17: a value outside them is 400 'Bad Request'",
    "A time_period outside the four values is 400.",
)
ROUND_IDS_FILTER = add(
    "check_round_ids_returns_only_those_rounds", MUST,
    "seed: round_ids, 'only data for the specified rounds'",
    "round_ids returns exactly the listed rounds of the window.",
)
VERSION_LENIENT = add(
    "check_any_version_behaves_as_1_0", MUST,
    "seed: version, 'Other version values are accepted but are treated as 1.0'; D1",
    "Any {version} answers exactly as 1.0.",
)
POSITIVE_RESPONSE_CONFORMS = add(
    "check_well_formed_request_gets_documented_200", MUST,
    "seed: example responses and 'Response codes' tables; contracts/sinatra.yaml; D15, D16",
    "A well-formed request by an entitled user is 200 with a JSON body matching the contract.",
)

# -- answers against the contract ----------------------------------------------------------------

ANSWERS_DECLARE_EVERY_FIELD = add(
    "check_answers_declare_every_field", MUST,
    "contracts/sinatra.yaml response schemas; issue 13 'Drift the checks cannot see'; D96, D97",
    "Every field of a 2xx JSON answer to a valid request is declared by the operation's "
    "response schema.",
)

# -- boundary values (issue 13) ----------------------------------------------------------------

BOUNDARY_VALUES_NEVER_5XX = add(
    "check_boundary_values_never_5xx", MUST,
    "seed: 500 is only 'internal server error'; D32; D92 (the values sent, D93)",
    "No boundary value in a path, query, header, credential or body field gets a 5xx.",
)
IMPOSSIBLE_DATES_REFUSED = add(
    "check_impossible_dates_are_refused", SHOULD,
    "RFC 3339 §5.7 (a date must exist); D17 (a parameter that cannot be parsed is 400); D94",
    "A date or date-time that does not exist (2026-02-30, month 13, 24:00:00) is a 4xx.",
)
