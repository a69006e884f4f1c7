"""`pepharness check operator`: an operator's identity-validation endpoint, as the PEP calls it
(contracts/operator-identity.yaml)."""
