"""Every rule the operator suite checks: name, level, and the seed line or decision behind it.

"seed" is `000_0be6fcad6355c2e7.txt` ("Player Auth Process", step 2); D-numbers are the rows of
contracts/README.md's decisions table.
"""

from __future__ import annotations

from pepharness.suites.generated import standard_rules
from pepharness.suites.rules import Level, RuleCatalog

MUST, SHOULD, INFO = Level.MUST, Level.SHOULD, Level.INFO

RULES = RuleCatalog("operator-identity")
add = RULES.add

SCHEMATHESIS_CHECKS = standard_rules(
    RULES,
    {
        "not_a_server_error": "seed: 500 is the operator's 'Internal Server Error', never an "
        "answer to input; D35",
        "status_code_conformance": "seed: Returns 200, Errors 404/400/401/500",
        "content_type_conformance": "seed: 'Payload (JSON)'; contracts/operator-identity.yaml",
        "response_schema_conformance": "seed: playerId <string|required>, expiresAt <RFC 3339 "
        "format DateTime|optional>; D33, D34",
        "negative_data_rejection": "seed: 400 'Invalid parameter'; D35",
        "positive_data_acceptance": "seed: identityToken string; D35 (an unknown token is 401, "
        "a token without a player 404)",
        "unsupported_method": "seed: 'Method: POST'; RFC 9110 §15.5.6",
    },
)

VALID_TOKEN_RETURNS_PLAYER = add(
    "check_valid_token_returns_player_id", MUST,
    "seed: 'status: 200', 'playerId: <string|required> the player id related to the identity "
    "token'",
    "A valid identity token is 200, a JSON body with a non-empty string playerId.",
)
EXPIRES_AT_IS_RFC3339 = add(
    "check_expires_at_is_rfc3339", MUST,
    "seed: 'expiresAt: <RFC 3339 format DateTime|optional>'; RFC 3339 §5.6; D33",
    "expiresAt, when present, is an RFC 3339 date-time with an offset.",
)
EXPIRES_AT_IN_FUTURE = add(
    "check_expires_at_is_in_the_future", MUST,
    "seed: 'datetime until the Player Identity token is valid'",
    "expiresAt, when present, has not passed: a token answered valid is valid now.",
)
SAME_TOKEN_SAME_PLAYER = add(
    "check_same_token_same_player", SHOULD,
    "seed: 'the player id related to the identity token'",
    "A valid token answers the same playerId every time it is validated.",
)
EXPIRED_TOKEN_REFUSED = add(
    "check_expired_token_is_401", MUST,
    "seed: '401: Token Invalid or expired'; D35",
    "An expired identity token (--expired-token) is 401.",
)
UNKNOWN_TOKEN_REFUSED = add(
    "check_unknown_token_is_401", MUST,
    "seed: '401: Token Invalid or expired'; D35",
    "A token the operator never issued is 401, a near miss of a valid one too (cut short, "
    "extended, another case, one character changed).",
)
MALFORMED_REFUSED = add(
    "check_malformed_request_is_refused", MUST,
    "seed: '400: Invalid parameter', '401: Token Invalid or expired'",
    "A missing, empty or non-string identityToken, or a body that is not a JSON object, is "
    "refused with 400 or 401.",
)
MALFORMED_IS_400 = add(
    "check_malformed_request_is_400", SHOULD,
    "seed: '400: Invalid parameter'; D35",
    "A missing, empty or non-string identityToken is 400 'Invalid parameter' rather than 401.",
)
HOSTILE_REFUSED = add(
    "check_hostile_input_is_refused", MUST,
    "seed: 400/401 for what is not a valid token; 500 only as the operator's own failure",
    "Hostile input (deep nesting, a huge or injected token, another media type, broken UTF-8) "
    "is refused with a 4xx: never 2xx, never 5xx.",
)
NO_LEAKED_INTERNALS = add(
    "check_errors_do_not_leak_internals", MUST,
    "OWASP ASVS 7.4.1 (generic error messages); D34",
    "No answer, a 200 included, carries a stack trace, an exception name with its location, "
    "or a source path.",
)
BURST_HELD = add(
    "check_burst_is_answered", MUST,
    "seed: the PEP 'immediately calls' the operator at every player login",
    "A burst of concurrent validations (--burst) is answered in full, each as it is answered "
    "alone: no 5xx, no dropped connection, no wrong player.",
)

# -- answers against the contract ------------------------------------------------------------------

ANSWERS_DECLARE_EVERY_FIELD = add(
    "check_answers_declare_every_field", MUST,
    "contracts/operator-identity.yaml response schemas; issue 13 "
    "'Drift the checks cannot see'; D96, D97",
    "Every field of a 2xx JSON answer to a valid request is declared by the operation's "
    "response schema.",
)

# -- boundary values (issue 13) ----------------------------------------------------------------

BOUNDARY_VALUES_NEVER_5XX = add(
    "check_boundary_values_never_5xx", MUST,
    "seed: 500 is the operator's 'Internal Server Error', never an answer to input; D35; D92",
    "No boundary value in the body or its fields gets a 5xx.",
)
