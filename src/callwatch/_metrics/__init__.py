"""Metric internals: call and latency stats, operations, errors, system sampling, Prometheus.

Hot paths write plain in-process structures; readers (``get_metrics()``, the
Prometheus exposition, health) build a :class:`~callwatch._metrics.snapshot.Totals`
from them and, under a pre-fork server, add the other workers' published totals.
"""
