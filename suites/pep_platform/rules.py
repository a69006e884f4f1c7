"""Every rule the PEP Platform suite checks: name, level, and the standard, vendor fact or
decision behind it.

"VENDOR-FACTS" is VENDOR-FACTS.md's "PEP Platform gateway" (the vendor's public documentation;
*observed* items come from third-party client code); D-numbers are the rows of
contracts/README.md's decisions table.
"""

from __future__ import annotations

from pepharness.suites.generated import standard_rules
from pepharness.suites.rules import Level, RuleCatalog

MUST, SHOULD, INFO = Level.MUST, Level.SHOULD, Level.INFO

RULES = RuleCatalog("pep-platform")
add = RULES.add

SCHEMATHESIS_CHECKS = standard_rules(
    RULES,
    {
        "not_a_server_error": "VENDOR-FACTS: 500 is the PEP's own failure; D52, D56 (500 only "
        "when faulted)",
        "status_code_conformance": "contracts/pep-platform.yaml; D51-D65",
        "content_type_conformance": "D52 (RFC 6749 §5.1/§5.2 JSON), D56 (JSON errors)",
        "response_schema_conformance": "contracts/pep-platform.yaml schemas; D51, D57, D61, D63, "
        "D64",
        "response_headers_conformance": "RFC 6749 §5.1 (Cache-Control, Pragma); D52 and D55 "
        "(WWW-Authenticate)",
        "negative_data_rejection": "RFC 6749 §5.2 and D52 (token requests); VENDOR-FACTS: 400 "
        "for invalid events; D56, D59, D60, D63",
        "positive_data_acceptance": "VENDOR-FACTS: events answer 202; D51-D53 (a generated "
        "client is 401), D61 (an unknown task 404), D63 (a generated cursor 400)",
        "ignored_auth": "VENDOR-FACTS: one OAuth token for every API, 401 on the RX endpoints; "
        "RFC 6750 §3.1; D55",
        "unsupported_method": "RFC 9110 §15.5.6",
    },
)

# -- the token endpoint ----------------------------------------------------------------------------

TOKEN_BY_BASIC = add(
    "check_token_by_basic_credentials", MUST,
    "RFC 6749 §4.4.2-§4.4.3, §2.3.1 (client_secret_basic), §5.1; D51",
    "grant_type=client_credentials with the client's HTTP Basic credentials is 200 with an "
    "access_token, token_type Bearer (any case) and expires_in > 0.",
)
TOKEN_BY_FORM = add(
    "check_token_by_form_credentials", MUST,
    "RFC 6749 §2.3.1 (client_id and client_secret in the form), §5.1; D51",
    "grant_type=client_credentials with client_id and client_secret in the form is 200 with an "
    "access_token, token_type Bearer (any case) and expires_in > 0.",
)
TOKEN_BY_JSON = add(
    "check_token_by_json_credentials", MUST,
    "VENDOR-FACTS (observed): JSON {clientId, clientSecret} → {accessToken}, a JWT; D51",
    "JSON {clientId, clientSecret} is 200 with an accessToken, tokenType Bearer and "
    "expiresIn > 0.",
)
TOKEN_NOT_STORED = add(
    "check_token_answer_is_not_stored", MUST,
    "RFC 6749 §5.1: 'MUST include … Cache-Control … no-store'; D51",
    "Every answer carrying a token has Cache-Control: no-store.",
)
TOKEN_PRAGMA = add(
    "check_token_answer_carries_pragma_no_cache", MUST,
    "RFC 6749 §5.1: 'MUST include … Pragma … no-cache' (obsolete since RFC 9111, still read "
    "by HTTP/1.0 caches); D51, D78",
    "Every answer carrying a token to an RFC 6749 request (the form, by Basic or form "
    "credentials) has Pragma: no-cache.",
)
JSON_TOKEN_PRAGMA = add(
    "check_json_token_answer_carries_pragma_no_cache", SHOULD,
    "RFC 6749 §5.1 by analogy: the vendor's observed JSON shape is not an RFC 6749 request; "
    "D78",
    "Every answer carrying a token to the JSON {clientId, clientSecret} request has Pragma: "
    "no-cache.",
)
NO_REFRESH_TOKEN = add(
    "check_no_refresh_token", SHOULD,
    "RFC 6749 §4.4.3: 'A refresh token SHOULD NOT be included'; D51",
    "A client credentials token comes without a refresh token.",
)
BOTH_METHODS = add(
    "check_both_client_auth_methods_is_invalid_request", MUST,
    "RFC 6749 §2.3: a client 'MUST NOT use more than one authentication method in each "
    "request'; §5.2 invalid_request; D51, D52",
    "HTTP Basic and client_id/client_secret in the form together are 400 invalid_request.",
)
BAD_CLIENT = add(
    "check_bad_client_credentials_is_invalid_client", MUST,
    "RFC 6749 §5.2 invalid_client (401 when the client used the Authorization header); D52 "
    "(401 for body credentials too)",
    "A wrong secret or an unknown client, by Basic, by the form or by JSON, is 401 "
    "invalid_client and no token.",
)
CLIENT_CHALLENGE = add(
    "check_invalid_client_carries_www_authenticate", MUST,
    "RFC 6749 §5.2: 'If the client attempted to authenticate via the Authorization request "
    "header field, the authorization server MUST respond with an HTTP 401 … and include the "
    "WWW-Authenticate response header field'; D52, D78",
    "Every 401 of the token endpoint to a client that authenticated with HTTP Basic carries a "
    "WWW-Authenticate challenge (Basic realm=…).",
)
BODY_CLIENT_CHALLENGE = add(
    "check_body_credentials_invalid_client_carries_www_authenticate", SHOULD,
    "DESIGN.md: 'WWW-Authenticate on 401 from the OAuth endpoint'; RFC 9110 §15.5.2 (a 401 "
    "carries a challenge); D52 (401 for body credentials too), D78",
    "Every 401 of the token endpoint to credentials in the form or in JSON carries a "
    "WWW-Authenticate challenge.",
)
UNSUPPORTED_GRANT = add(
    "check_unsupported_grant_type_is_400", MUST,
    "RFC 6749 §5.2 unsupported_grant_type; D52",
    "A grant_type other than client_credentials (password, authorization_code, an invented "
    "one) is 400 unsupported_grant_type.",
)
UNKNOWN_SCOPE = add(
    "check_unknown_scope_is_invalid_scope", MUST,
    "RFC 6749 §3.3, §5.2 invalid_scope; D53",
    "A scope outside events:write, players:sync and data:read is 400 invalid_scope.",
)
MISSING_GRANT = add(
    "check_missing_grant_type_is_invalid_request", MUST,
    "RFC 6749 §4.4.2 (grant_type REQUIRED), §5.2 invalid_request ('missing a required "
    "parameter'); D52 and the contract's 400 ('a missing grant_type in the form')",
    "A form without grant_type is 400 invalid_request.",
)
REPEATED_PARAMETER = add(
    "check_token_repeated_parameter_is_invalid_request", MUST,
    "RFC 6749 §3.2: parameters 'MUST NOT be included more than once'; §5.2 invalid_request; "
    "D76",
    "A token request with grant_type, or scope, sent twice in the form is 400 "
    "invalid_request, and no token.",
)
MALFORMED_CLIENT_AUTH = add(
    "check_malformed_client_auth_is_400_or_401", MUST,
    "RFC 6749 §2.3.1, §5.2 (invalid_client, or invalid_request for a malformed request); "
    "RFC 7617 §2; D76",
    "Basic credentials that are not UTF-8 (base64 of other bytes, or bytes past ASCII in the "
    "header), not base64, or without a colon are 401 invalid_client or 400 invalid_request: "
    "never a token, never a 5xx.",
)
LIFETIME_BOUNDED = add(
    "check_token_lifetime_is_bounded", SHOULD,
    "RFC 6819 §5.1.5.3 (short expiration time); D54 (exp = iat + 3600)",
    "The token lives at most 24 hours: its expires_in, and a JWT's exp - iat.",
)
TOKEN_EXPIRES = add(
    "check_token_expires", MUST,
    "RFC 6749 §5.1 (expires_in: the token's lifetime); RFC 7519 §4.1.4; D54, D55",
    "Once the target's clock is past expires_in (--clock-control), the token is 401; before, "
    "it is accepted.",
    exclusive=True,
)

# -- Bearer tokens on the protected endpoints ------------------------------------------------------

MISSING_BEARER = add(
    "check_missing_bearer_is_401", MUST,
    "VENDOR-FACTS: 401 on the RX endpoints; RFC 6750 §3.1; D55",
    "Every protected endpoint answers 401 without an Authorization header.",
)
GARBAGE_BEARER = add(
    "check_garbage_bearer_is_401", MUST,
    "RFC 6750 §3.1 invalid_token; D55",
    "Every protected endpoint answers 401 to a Bearer value that is not a token, or to the "
    "client's Basic credentials.",
)
FORGED_BEARER = add(
    "check_forged_bearer_is_401", MUST,
    "RFC 8725 §3.1-§3.3 (verify the signature); D55",
    "Every protected endpoint answers 401 to a genuine token's claims signed with another key, "
    "or to the token with its signature altered.",
)
ALG_NONE_BEARER = add(
    "check_alg_none_bearer_is_401", MUST,
    "RFC 8725 §2.1, §3.1 ('none' must not be accepted); D55",
    "Every protected endpoint answers 401 to a genuine token's claims unsigned (alg none).",
)
BEARER_CHALLENGE = add(
    "check_bearer_401_carries_challenge", SHOULD,
    "RFC 6750 §3, §3.1; RFC 9110 §11.6.1; D55",
    "Every 401 of a protected endpoint carries WWW-Authenticate: Bearer, with "
    "error=\"invalid_token\" when a token was refused.",
)
SCOPE_ENFORCED = add(
    "check_scope_is_enforced", MUST,
    "RFC 6750 §3.1 insufficient_scope (403); D53, D55",
    "A data:read token is 403 insufficient_scope on the events and the sync; an events:write "
    "token on the data fetch and the sync.",
)

# -- reactive events -------------------------------------------------------------------------------

EVENT_IS_202 = add(
    "check_valid_event_is_202", MUST,
    "VENDOR-FACTS: 'Reactive events answer 202'; D57",
    "A valid event is 202 (not 200 or 201) on each of the five event endpoints.",
)
INVALID_EVENT_400 = add(
    "check_invalid_event_is_400", MUST,
    "VENDOR-FACTS: 400 otherwise; D56, D59",
    "An event with a required field missing, an enum value outside the list, a negative "
    "amount, a date that is not RFC 3339 with an offset, or a body that is not JSON is 400.",
)
INVALID_EVENT_FIELD = add(
    "check_invalid_event_names_the_field", SHOULD,
    "D56: errors [{field, message}], indexes in brackets",
    "The 400 of an invalid event lists the invalid field in errors[].field.",
)
INVALID_NOT_STORED = add(
    "check_invalid_event_is_not_stored", MUST,
    "D56: 'An invalid body is invalid_request; nothing of it is stored'",
    "An invalid money transaction or round never appears in the data fetch.",
)
REPEAT_IS_202 = add(
    "check_repeated_event_is_202", MUST,
    "VENDOR-FACTS: 'clients retry with exponential backoff'; D58",
    "The same event sent twice is 202 both times.",
)
REPEAT_FLAGGED = add(
    "check_repeated_event_is_flagged_duplicate", SHOULD,
    "D57: duplicate true, eventId the first one's (duplicates counted on a round)",
    "The repeat's 202 says duplicate: true with the first answer's eventId.",
)
REPEAT_COUNTED_ONCE = add(
    "check_repeated_event_is_counted_once", MUST,
    "VENDOR-FACTS: clients retry; D58 (stored and counted once), D64",
    "A money transaction or round sent twice appears once in the data fetch of transactions.",
)
OUT_OF_ORDER = add(
    "check_out_of_order_event_is_accepted", MUST,
    "VENDOR-FACTS: clients retry with backoff, so events arrive late; D63 ('late events keep "
    "arriving with old dates')",
    "An event dated before one already sent for the same player is 202.",
)

# -- durability ------------------------------------------------------------------------------------

READABLE_AT_ONCE = add(
    "check_accepted_event_is_readable_at_once", MUST,
    "D57: 'Every accepted event is committed before the 202'; D63 (the data fetch lists what "
    "was received after delta)",
    "A money transaction or a round is listed by the data fetch right after its 202.",
)
SURVIVES_RESTART = add(
    "check_accepted_events_survive_a_restart", MUST,
    "D57: 'Every accepted event is committed before the 202'; D58 (stored and counted once)",
    "20 money transactions sent just before the target is restarted (--restart-command) are "
    "each listed exactly once when it is back; one of them sent again is 202 and still listed "
    "once.",
    exclusive=True,
)

# -- data fetch ------------------------------------------------------------------------------------

LIMIT_HONOURED = add(
    "check_fetch_limit_is_honoured", MUST,
    "VENDOR-FACTS: 'at most 1,000 items per call (limit lowers it)'; D63",
    "A page never holds more items than its limit.",
)
PAGES_PARTITION = add(
    "check_fetch_pages_partition_items", MUST,
    "VENDOR-FACTS: a next cursor, delta for incremental sync; D63 ('pages neither skip nor "
    "repeat')",
    "Following next from a delta just before K fresh items, with a small limit, lists each of "
    "them once, repeats nothing, and ends with next null.",
)
BAD_LIMIT = add(
    "check_fetch_bad_limit_is_400", MUST,
    "VENDOR-FACTS: at most 1,000 items per call; D63 (limit 1 to 1,000, else 400)",
    "limit 0, 1001 or a word is 400.",
)
BAD_NEXT = add(
    "check_fetch_malformed_next_is_400", MUST,
    "D63: 'a cursor not issued there 400'; the contract's minLength 1; D77",
    "A next the endpoint did not issue, or an empty one, is 400.",
)
BAD_DELTA = add(
    "check_fetch_bad_delta_is_400", MUST,
    "D63: delta an RFC 3339 date-time; the contract's InvalidQuery",
    "A delta that is not an RFC 3339 date-time is 400.",
)
RATE_LIMITED = add(
    "check_rate_limit_is_429_at_request_n_plus_1", MUST,
    "VENDOR-FACTS: '100 requests per minute, sliding window'; RFC 6585 §4; D65",
    "From an empty window, --expect-rate-limit N/S: the first N data-fetch requests are "
    "served, request N+1 is 429.",
    exclusive=True,
)
RETRY_AFTER = add(
    "check_429_carries_retry_after", SHOULD,
    "DESIGN.md: 'Retry-After on 429'; RFC 6585 §4, RFC 9110 §10.2.3; D65",
    "The 429 carries Retry-After: delay-seconds or an HTTP-date, within the period.",
    exclusive=True,
)
RATE_RECOVERS = add(
    "check_rate_limit_recovers_after_retry_after", MUST,
    "D65: a refused request is not counted, so a client that waits recovers",
    "Once Retry-After has passed (the target's clock moved, or a wait of at most 10 s), the "
    "data fetch is served again.",
    exclusive=True,
)

# -- bulk player sync ------------------------------------------------------------------------------

SYNC_REPORTS = add(
    "check_sync_reports_each_player", MUST,
    "VENDOR-FACTS: 'answers a task id and per-player validation errors'; D60, D61",
    "100 players with 3 invalid is 202 with a taskId, received 100, stored 97, errorsTotal 3.",
)
SYNC_ERRORS_NAMED = add(
    "check_sync_errors_name_index_and_field", MUST,
    "VENDOR-FACTS: per-player validation errors; D61 (errors [{index, playerId, field, "
    "message}])",
    "Each refused player is an error naming its index in the batch and the invalid field.",
)
SYNC_COMPRESSED = add(
    "check_sync_accepts_compressed_body", MUST,
    "VENDOR-FACTS: 'gzip or Brotli Content-Encoding accepted'; D60",
    "A gzip or br Content-Encoding body is decompressed and synced (202, every player stored).",
)
SYNC_TASK = add(
    "check_sync_task_is_readable", MUST,
    "VENDOR-FACTS: a task id; D61 (GET …/migrate/batch/{taskId}: the same report)",
    "GET /api/players-data/v1/migrate/batch/{taskId} is 200 with the POST's report.",
)

# -- all answers -----------------------------------------------------------------------------------

HOSTILE_NO_5XX = add(
    "check_hostile_input_is_not_a_server_error", MUST,
    "D52, D56: 500 only when the PEP itself is faulted; RFC 9110 §15.6; D80",
    "Hostile input (nesting 50,000 deep, a 401-digit number, bytes that are not UTF-8, a lone "
    "surrogate in JSON, a 10,000-character token, a body in an unknown encoding) is never "
    "answered 5xx.",
)
NO_LEAKED_INTERNALS = add(
    "check_errors_do_not_leak_internals", MUST,
    "OWASP ASVS 7.4.1 (generic error messages); D56",
    "No error answer carries a stack trace, an exception with its location or a source path.",
)

# -- answers against the contract ------------------------------------------------------------------

ANSWERS_DECLARE_EVERY_FIELD = add(
    "check_answers_declare_every_field", MUST,
    "contracts/pep-platform.yaml response schemas; issue 13 "
    "'Drift the checks cannot see'; D96, D97",
    "Every field of a 2xx JSON answer to a valid request is declared by the operation's "
    "response schema.",
)

# -- boundary values (issue 13) ----------------------------------------------------------------

BOUNDARY_VALUES_NEVER_5XX = add(
    "check_boundary_values_never_5xx", MUST,
    "D56 (500 internal_error only when faulted); RFC 6749 §5.2; D92 (the values sent, D93)",
    "No boundary value in a path, query, form field, credential, body field or body gets a 5xx.",
)
IMPOSSIBLE_DATES_REFUSED = add(
    "check_impossible_dates_are_refused", SHOULD,
    "RFC 3339 §5.7 (a date must exist); D63 (delta an RFC 3339 date-time, else 400); D94",
    "A date-time that does not exist (30 February, month 13, 24:00:00) in a query is a 4xx.",
)
