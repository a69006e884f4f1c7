"""`pepharness check pep-frontend`: a PEP's Frontend gateway, with the harness playing the
operator it calls (contracts/pep-frontend.yaml, contracts/operator-identity.yaml)."""
