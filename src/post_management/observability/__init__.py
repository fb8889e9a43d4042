"""Cross-cutting telemetry: Prometheus instruments, tracing, JSON logs, correlation ids.

It sits below the services layer (see the import-linter layers) so that services,
adapters and entrypoints can all report through it; it imports none of them.
"""
