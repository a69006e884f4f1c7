"""Conformance suites: a pytest plugin, named rules with their levels, and one suite per API."""
