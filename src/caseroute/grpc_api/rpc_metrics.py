"""A call listener that reports each finished unary call's status and time to the metrics."""

from __future__ import annotations

from caseroute.grpc_api.rpc_calls import FinishedCall
from caseroute.metrics import MetricsRecorder


class RpcMetricsListener:
    """Counts every unary call's final status code and times the successful ones.

    ``RpcCallInterceptor`` (outermost, so calls the access checks refuse are counted too)
    measures the call and tells this listener. Streaming methods (health ``Watch``,
    reflection) are not counted; a method no service registers is counted as UNIMPLEMENTED
    with an empty method label. Only the method's name is used, never request content.
    """

    def __init__(self, recorder: MetricsRecorder) -> None:
        """Report to ``recorder``."""
        self._recorder = recorder

    def call_finished(self, call: FinishedCall) -> None:
        """Count ``call`` (an unknown method's caller-chosen path is never a label)."""
        method = call.method if call.known else ""
        self._recorder.rpc_finished(method, call.code.name, call.elapsed_s)
