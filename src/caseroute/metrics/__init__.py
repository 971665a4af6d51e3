"""Prometheus metrics: what is measured, who updates it, where it is served.

``definitions`` names every metric, ``recorder`` updates them, ``exposition`` serves them.

The core never imports prometheus_client: ``RoutingCore`` tells a ``DecisionObserver`` (the
recorder here) about each result, and the gRPC layer tells it about each finished call.
"""

from caseroute.metrics.definitions import Metrics, define_metrics
from caseroute.metrics.recorder import MetricsRecorder

__all__ = ["Metrics", "MetricsRecorder", "define_metrics"]
