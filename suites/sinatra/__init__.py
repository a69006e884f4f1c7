"""The Sinatra conformance suite."""
