"""A server interceptor that reports each finished unary call's status and time to the metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc

from caseroute.metrics import MetricsRecorder


class RpcMetricsInterceptor(grpc.ServerInterceptor):
    """Counts every unary call's final status code and times the successful ones.

    It must be the first (outermost) interceptor, so calls the access checks refuse are
    counted too. The status is read from the context after the method returns: the servicers
    set it there (``set_code``) or abort with it. Streaming methods (health ``Watch``,
    reflection) are passed through uncounted; a method no service registers is counted as
    UNIMPLEMENTED. Only the method's name is used, never request content.
    """

    def __init__(self, recorder: MetricsRecorder) -> None:
        """Report to ``recorder``."""
        self._recorder = recorder

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The method's handler, wrapped to report its outcome."""
        handler = continuation(handler_call_details)
        if handler is None:
            self._recorder.rpc_finished("", grpc.StatusCode.UNIMPLEMENTED.name, 0.0)
            return None
        if handler.unary_unary is None:
            return handler
        behavior = handler.unary_unary
        method = str(handler_call_details.method).rsplit("/", 1)[-1]
        recorder = self._recorder

        def observed(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            try:
                response = behavior(request, context)
            except BaseException:
                # An abort left its code on the context; anything else ends UNKNOWN.
                code = _code(context) or grpc.StatusCode.UNKNOWN
                recorder.rpc_finished(method, code.name, time.perf_counter() - start)
                raise
            code = _code(context) or grpc.StatusCode.OK
            recorder.rpc_finished(method, code.name, time.perf_counter() - start)
            return response

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """The status code the method set or aborted with (None: it set none).

    grpcio's server context has had ``code()`` since 1.38; the typeshed stubs lack it.
    """
    code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
    return code
