#!/bin/sh
# Lint every OpenAPI contract with Spectral (.spectral.yml) and Redocly (redocly.yml), both run
# through npx (Node 20 or later; the first run downloads them). Exit 0 when neither reports an
# error. contracts/README.md, "Outside tools", lists the rules the configs change and why.
set -u
cd "$(dirname "$0")"
CONTRACTS="sinatra operator-identity pep-frontend pep-platform admin"
status=0
for name in $CONTRACTS; do
    npx --yes @stoplight/spectral-cli@6 lint --ruleset .spectral.yml --fail-severity error \
        "$name.yaml" || status=1
done
# redocly.yml names each contract under `apis` (its per-contract rules).
# shellcheck disable=SC2086
npx --yes @redocly/cli@2 lint --config redocly.yml $CONTRACTS || status=1
exit $status
