"""contracts/operator-identity.yaml as a schemathesis 4 schema: positive and negative bodies."""

from __future__ import annotations

import copy

import schemathesis
from schemathesis.schemas import BaseSchema

from pepharness.suites import documents, generated
from pepharness.suites.operator.client import CONTRACT
from pepharness.suites.options import SuiteOptions

# A well-formed token the operator never issued is 401, one whose player is gone 404 (D35).
ACCEPTED = {"validatePlayerIdentity": ["200", "401", "404"]}


def schema(options: SuiteOptions) -> BaseSchema:
    document = copy.deepcopy(documents.load(CONTRACT))
    return schemathesis.openapi.from_dict(document, config=generated.config(options, ACCEPTED))
