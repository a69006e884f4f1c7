"""`pepharness check API`: one module per API (sinatra, operator, pep_frontend, pep_platform)
over the shared check runner (common.py, itself over pepharness/runner.py); group.py gathers
them into the `check` command."""
