"""Every rule the PEP Frontend suite checks: name, level, and the seed line or decision behind it.

"seed" is `000_0be6fcad6355c2e7.txt` ("Player Auth Process"); D-numbers are the rows of
contracts/README.md's decisions table.
"""

from __future__ import annotations

from pepharness.suites.generated import standard_rules
from pepharness.suites.rules import Level, RuleCatalog

MUST, SHOULD, INFO = Level.MUST, Level.SHOULD, Level.INFO

RULES = RuleCatalog("pep-frontend")
add = RULES.add

SCHEMATHESIS_CHECKS = standard_rules(
    RULES,
    {
        "not_a_server_error": "D43: 500 only when the PEP itself fails; a 5xx for the "
        "operator's failures is 502/504 (D45), which generated input never provokes",
        "status_code_conformance": "contracts/pep-frontend.yaml; D43-D47",
        "content_type_conformance": "D43: JSON answers and errors",
        "response_schema_conformance": "D43, D47; contracts/pep-frontend.yaml schemas",
        "response_headers_conformance": "D43 (Cache-Control), D46 (WWW-Authenticate)",
        "negative_data_rejection": "seed: identityToken and clientId are strings; D44",
        "positive_data_acceptance": "seed: the auth call's parameters; D44, D45 (an unknown "
        "client is 401, an unknown identity token the operator's 401)",
        "ignored_auth": "seed: 'adding the JWT in the x-authorization header'; D46",
        "unsupported_method": "RFC 9110 §15.5.6",
    },
)

# -- the call to the operator ----------------------------------------------------------------------

OPERATOR_CALLED = add(
    "check_operator_called_with_identity_token", MUST,
    "seed step 2: the gateway 'immediately calls' the operator's POST /api/auth/v1/player "
    "with param identityToken",
    "A login makes one POST /api/auth/v1/player to the operator, with the identity token as "
    "the JSON body's identityToken.",
)
SECRET_NOT_SENT = add(
    "check_client_secret_not_sent_to_operator", MUST,
    "seed step 2: 'Params: identityToken'; the API client's secret is the PEP's own (D45)",
    "The call to the operator carries no client secret: no secret-named key, no "
    "--client-secret value in the body or, when the harness serves the operator, any header.",
)
ONLY_IDENTITY_TOKEN = add(
    "check_operator_call_sends_identity_token_only", SHOULD,
    "seed step 2: 'Params: identityToken'; D45",
    "The call's body is {identityToken} and nothing else.",
)
UNKNOWN_CLIENT_REFUSED = add(
    "check_unknown_client_is_refused", MUST,
    "seed step 1: 'clientId: ClientID generated in the Admin related to your API client'; D44",
    "A clientId the PEP has not issued is refused with a 4xx and no token.",
)
UNKNOWN_CLIENT_401 = add(
    "check_unknown_client_is_401_without_operator_call", SHOULD,
    "D44; RFC 6749 §5.2 (invalid_client is 401)",
    "An unknown clientId is 401 and never reaches the operator.",
)
UNENCODABLE_REFUSED = add(
    "check_login_refuses_unencodable_text", MUST,
    "RFC 8259 §8.1 (JSON text is UTF-8), §8.2 (unpaired surrogates); D81",
    "A login whose identityToken or clientId holds a lone surrogate escape, a NUL or bytes that "
    "are not UTF-8, or with a key holding a lone surrogate or such bytes, is a 4xx, never a 5xx "
    "and no token.",
)
NO_RETRY = add(
    "check_operator_4xx_not_retried", MUST,
    "DESIGN.md: 'no retries on 4xx'; D45",
    "An operator 400, 401 or 404 is taken as it is: one call, never retried.",
)
ERRORS_REFUSE = add(
    "check_operator_refusal_is_refused", MUST,
    "seed step 2: Errors 404/400/401 ('Token Invalid or expired'); D45",
    "An operator 400, 401 or 404 makes the login a 4xx with no token.",
)
ERRORS_KEEP_STATUS = add(
    "check_operator_refusal_keeps_its_status", SHOULD,
    "D45: operator 400 → 400, 401 → 401, 404 → 404",
    "An operator 400, 401 or 404 keeps its status through the PEP.",
)
FAILURE_IS_BAD_GATEWAY = add(
    "check_operator_failure_is_bad_gateway", MUST,
    "seed: operator '500: Internal Server Error'; RFC 9110 §15.6.3; D45",
    "An operator 500 or an answer off its contract (no playerId, expiresAt not RFC 3339, not "
    "JSON) makes the login 502 (503/504 accepted), never a token and never 500.",
)
TIMEOUT_BOUNDED = add(
    "check_operator_timeout_is_bounded", MUST,
    "DESIGN.md: 'a slow or dead operator to a bounded 502/504'; RFC 9110 §15.6.5; D45",
    "When the operator does not answer, the login is 504 (502/503 accepted) within "
    "--operator-timeout seconds.",
)
DOWN_BOUNDED = add(
    "check_dead_operator_is_bounded", MUST,
    "DESIGN.md: 'a slow or dead operator to a bounded 502/504'; D45",
    "When the operator refuses connections, the login is 502 or 504 within --operator-timeout "
    "seconds.",
)

# -- the token -------------------------------------------------------------------------------------

TOKEN_ISSUED = add(
    "check_login_issues_token", MUST,
    "seed step 3: 'a new JWT Identity Token is created'; D43",
    "A login the operator validates is 200 with a token that opens the player endpoints.",
)
EXP_WITHIN_EXPIRES_AT = add(
    "check_token_does_not_outlive_expires_at", MUST,
    "seed: expiresAt 'datetime until the Player Identity token is valid'; D46",
    "The token's exp (or the answer's expiresAt) is not later than the operator's expiresAt.",
)
PASSED_EXPIRES_AT = add(
    "check_passed_expires_at_opens_nothing", MUST,
    "seed: expiresAt 'until the Player Identity token is valid'; D46",
    "An operator 200 whose expiresAt has passed yields no token that opens anything.",
)
DEFAULT_LIFETIME = add(
    "check_token_lifetime_is_bounded_without_expires_at", SHOULD,
    "D46 (one hour); RFC 8725 §3.10 (short-lived tokens)",
    "Without the operator's expiresAt, the token still expires, within 24 hours.",
)
EXPIRED_REFUSED = add(
    "check_expired_token_is_refused", MUST,
    "seed: expiresAt; RFC 7519 §4.1.4 (exp); D46",
    "A token past its expiry (the operator's expiresAt a few seconds ahead) is 401.",
)
TOKEN_SIGNED = add(
    "check_token_is_signed", MUST,
    "seed step 3: a JWT; RFC 8725 §3.1-3.2 (no alg none, verify the signature)",
    "A JWT token is signed (alg is not none); an opaque token is accepted too.",
)

# -- x-authorization -------------------------------------------------------------------------------

MISSING_REFUSED = add(
    "check_missing_x_authorization_is_401", MUST,
    "seed step 3: 'adding the JWT in the x-authorization header'; D46",
    "Every player endpoint answers 401 without x-authorization.",
)
FORGED_REFUSED = add(
    "check_forged_token_is_401", MUST,
    "RFC 8725 §3.1-3.2; D46",
    "Every player endpoint answers 401 to the genuine claims signed with another key, or the "
    "token with its signature altered.",
)
ALG_NONE_REFUSED = add(
    "check_alg_none_token_is_401", MUST,
    "RFC 8725 §2.1, §3.1 ('none' must not be accepted); D46",
    "Every player endpoint answers 401 to the genuine claims unsigned (alg none).",
)
OTHER_AUDIENCE_REFUSED = add(
    "check_other_audience_token_is_401", MUST,
    "RFC 8725 §3.9 (audience); D46 (a Sinatra token must not open the PEP)",
    "Every player endpoint answers 401 to a token of another service or audience.",
)
GARBAGE_REFUSED = add(
    "check_garbage_x_authorization_is_401", MUST,
    "D46",
    "Every player endpoint answers 401 to a value that is not a token.",
)
CHALLENGE = add(
    "check_401_carries_www_authenticate", SHOULD,
    "RFC 9110 §11.6.1 (a 401 carries WWW-Authenticate); RFC 6750 §3; D46",
    "Every 401 carries a WWW-Authenticate challenge.",
)
LOGOUT_REVOKES = add(
    "check_session_end_revokes_token", SHOULD,
    "D47: DELETE /api/auth/v1/session ends the session",
    "After DELETE /api/auth/v1/session the token opens nothing.",
)
NO_STORE = add(
    "check_login_answer_is_not_stored", SHOULD,
    "RFC 6749 §5.1 practice: an answer with a credential carries Cache-Control: no-store; D43",
    "The login's 200 carries Cache-Control: no-store.",
)
NO_LEAKED_INTERNALS = add(
    "check_errors_do_not_leak_internals", MUST,
    "OWASP ASVS 7.4.1 (generic error messages)",
    "No error answer carries a stack trace, an exception with its location or a source path "
    "— the operator's failures included.",
)

# -- answers against the contract ------------------------------------------------------------------

ANSWERS_DECLARE_EVERY_FIELD = add(
    "check_answers_declare_every_field", MUST,
    "contracts/pep-frontend.yaml response schemas; issue 13 "
    "'Drift the checks cannot see'; D96, D97",
    "Every field of a 2xx JSON answer to a valid request is declared by the operation's "
    "response schema.",
)

# -- boundary values (issue 13) ----------------------------------------------------------------

BOUNDARY_VALUES_NEVER_5XX = add(
    "check_boundary_values_never_5xx", MUST,
    "D43 (500 only when faulted); D92 (the values sent, D93)",
    "No boundary value in a query, credential, body field or body gets a 5xx.",
)

# -- the player's standing -------------------------------------------------------------------------

STANDING_NEVER_DECREASES = add(
    "check_player_standing_never_decreases", MUST,
    "VENDOR-FACTS.md: ranksData.{rank.name, level.levelNumber, xpBalance}, ranks:on:xpUp and "
    "ranks:on:levelUp (a rise); issue 13 item 6; D68, D89-D91",
    "A player's XP and level never drop through an event sent to the Platform gateway, and "
    "/api/players/v1/me and the XP leaderboard's me agree on XP, level and rank before and "
    "after it.",
)
