"""`pepharness check pep-platform`: a PEP's Platform gateway (contracts/pep-platform.yaml): the
OAuth client credentials token, the reactive events, the bulk player sync and the data fetch."""
