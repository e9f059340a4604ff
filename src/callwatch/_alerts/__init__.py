"""Alerting internals: thresholds, lifecycle, delivery, one module per handler."""
