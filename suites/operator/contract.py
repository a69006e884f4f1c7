"""contracts/operator-identity.yaml as a schemathesis 4 schema: positive and negative bodies."""

from __future__ import annotations

import copy
from typing import Any

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema

from pepharness.suites import documents
from pepharness.suites.operator.client import CONTRACT
from pepharness.suites.options import SuiteOptions

# A well-formed token the operator never issued is 401, one whose player is gone 404 (D35).
ACCEPTED = {"validatePlayerIdentity": ["200", "401", "404"]}


def config(options: SuiteOptions) -> SchemathesisConfig:
    data: dict[str, Any] = {
        "generation": {
            "mode": "all",
            "max-examples": options.max_examples,
            "database": "none",
        },
        "phases": {"stateful": {"enabled": False}},
        "request-timeout": 30,
        "operations": [
            {
                "include-operation-id": operation_id,
                "checks": {"positive_data_acceptance": {"expected-statuses": statuses}},
            }
            for operation_id, statuses in ACCEPTED.items()
        ],
    }
    if options.seed is not None:
        data["seed"] = options.seed
    return SchemathesisConfig.from_dict(data)


def schema(options: SuiteOptions) -> BaseSchema:
    document = copy.deepcopy(documents.load(CONTRACT))
    return schemathesis.openapi.from_dict(document, config=config(options))
