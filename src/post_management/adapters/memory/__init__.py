"""In-memory implementations of the ports, for use-case tests without a database.

They behave as the PostgreSQL adapters do (tests/contract proves it); they never
import a driver or a client library (an import-linter contract keeps it so).
"""
