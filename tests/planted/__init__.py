"""Deliberately broken variants of the Sinatra mock, for tests/test_check_planted.py."""
