"""Fixtures shared across the tree: the private PostgreSQL cluster and the store backends."""

pytest_plugins = ["tests.fixtures.postgres"]
