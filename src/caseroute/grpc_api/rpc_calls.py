"""One interceptor that times each finished unary call once and tells every call listener.

The metrics (``rpc_metrics.py``) and the call log (``rpc_log.py``) both want the same facts
about a call: its method, final status code and time. ``RpcCallInterceptor`` measures them
once and hands a ``FinishedCall`` to each listener, so the two never disagree about a call.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

import grpc

from caseroute.grpc_api.servicer import caller_identity

log = logging.getLogger("caseroute.grpc")


@dataclass(frozen=True, slots=True)
class FinishedCall:
    """What one unary call did, as the outermost interceptor saw it.

    Attributes:
        service: Full service name (``caseroute.v1.RoutingService``); "" for an unknown method.
        method: Method name (``Decide``); for an unknown method, the path the caller sent.
        code: The final status code.
        elapsed_s: Seconds from the call reaching the interceptors to its end (0 when no
            service has the method).
        request: The decoded request (None for an unknown method); may be an
            ``UndecodableRequest``.
        response: The reply message (None when the call raised or aborted).
        caller: The identity that passed the access check (token identity, else the client
            certificate's), "" when none did or the service is open without TLS.
        peer: The transport's peer address (``ipv4:127.0.0.1:51234``).
    """

    service: str
    method: str
    code: grpc.StatusCode
    elapsed_s: float
    request: Any
    response: Any
    caller: str
    peer: str

    @property
    def known(self) -> bool:
        """True when some service registered the method."""
        return bool(self.service)


class CallListener(Protocol):
    """Told of each finished unary call; must not raise (failures are logged and dropped)."""

    def call_finished(self, call: FinishedCall) -> None:
        """``call`` ended."""


@dataclass(slots=True)
class _CallNotes:
    caller: str = ""


_NOTES: contextvars.ContextVar[_CallNotes | None] = contextvars.ContextVar(
    "caseroute_call_notes", default=None
)


Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic only in the stubs


class _WrappedHandlers:
    """Each method's wrapped handler, built once instead of on every call.

    grpcio runs the interceptors for every call; a wrapper made of a handler depends only on
    the method's path and that handler, so it is kept and reused while the handler under it is
    the same object (a servicer's handler always is; the access check's is rebuilt per call
    for a guarded service, and then so is the wrapper). One entry per method path, and only
    paths some service registered are kept (an unknown method has no handler): bounded by the
    server's methods.
    """

    def __init__(self) -> None:
        """Nothing kept yet."""
        self._by_path: dict[str, tuple[Handler, Handler]] = {}

    def get(self, path: str, handler: Handler, wrap: Callable[[str, Handler], Handler]) -> Handler:
        """``wrap(path, handler)``, built now or kept from a call with the same handler.

        Args:
            path: The method's full path (``/caseroute.v1.RoutingService/Decide``).
            handler: The handler the next interceptor (or the servicer) gave for it.
            wrap: Builds the wrapper.

        Returns:
            The wrapper.
        """
        kept = self._by_path.get(path)
        if kept is not None and kept[0] is handler:
            return kept[1]
        wrapped = wrap(path, handler)
        self._by_path[path] = (handler, wrapped)  # a dict write is atomic under the GIL
        return wrapped


class RpcCallInterceptor(grpc.ServerInterceptor):
    """Times every unary call, reads its final status once, and tells each listener.

    It must be the first (outermost) interceptor, so calls the access checks refuse are seen
    too; ``CallerNoteInterceptor`` must be the last, so it sees who passed them. The status is
    read from the context after the method returns: the servicers set it there
    (``set_code``) or abort with it. Streaming methods (health ``Watch``, reflection) pass
    through unseen; a method no service registers is told as UNIMPLEMENTED.
    """

    def __init__(self, listeners: Sequence[CallListener]) -> None:
        """Tell ``listeners`` (in order) of each finished call."""
        self._listeners = tuple(listeners)
        self._wrapped = _WrappedHandlers()

    def _tell(self, call: FinishedCall) -> None:
        for listener in self._listeners:
            try:
                listener.call_finished(call)
            except Exception:  # a listener never fails the call it reports
                log.exception("call listener %s failed", type(listener).__name__)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The method's handler, wrapped to report its outcome."""
        handler = continuation(handler_call_details)
        path = str(handler_call_details.method)
        if handler is None:
            self._tell(
                FinishedCall("", path, grpc.StatusCode.UNIMPLEMENTED, 0.0, None, None, "", "")
            )
            return None
        if handler.unary_unary is None:
            return handler
        return self._wrapped.get(path, handler, self._observed)

    def _observed(self, path: str, handler: Handler) -> Handler:
        """``handler`` wrapped to time its calls and tell the listeners."""
        behavior = handler.unary_unary
        assert behavior is not None  # noqa: S101 - only unary handlers are wrapped
        service, _, method = path.lstrip("/").rpartition("/")
        tell = self._tell

        def observed(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            notes = _CallNotes()
            token = _NOTES.set(notes)
            response = None
            try:
                response = behavior(request, context)
            except BaseException:
                # An abort left its code on the context; anything else ends UNKNOWN.
                code = _code(context) or grpc.StatusCode.UNKNOWN
                raise
            else:
                code = _code(context) or _unset_code(context)
            finally:
                elapsed = time.perf_counter() - start
                _NOTES.reset(token)
                tell(
                    FinishedCall(
                        service,
                        method,
                        code,
                        elapsed,
                        request,
                        response if code == grpc.StatusCode.OK else None,
                        notes.caller,
                        _peer(context),
                    )
                )
            return response

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class CallerNoteInterceptor(grpc.ServerInterceptor):
    """Notes, for ``RpcCallInterceptor``, who passed the access check of each unary call.

    It must be the last (innermost) interceptor: the access check's identity exists only
    while the guarded method runs.
    """

    def __init__(self) -> None:
        """Wrap each method's handler once (see ``_WrappedHandlers``)."""
        self._wrapped = _WrappedHandlers()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The method's handler, wrapped to note the caller's identity."""
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        return self._wrapped.get(str(handler_call_details.method), handler, _noted)


def _noted(_path: str, handler: Handler) -> Handler:
    """``handler`` wrapped to note who passed the access check of each call."""
    behavior = handler.unary_unary
    assert behavior is not None  # noqa: S101 - only unary handlers are wrapped

    def noted(request: Any, context: grpc.ServicerContext) -> Any:
        notes = _NOTES.get()
        if notes is not None:
            notes.caller = caller_identity(context)
        return behavior(request, context)

    return grpc.unary_unary_rpc_method_handler(
        noted,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _peer(context: grpc.ServicerContext) -> str:
    try:
        return str(context.peer())
    except (NotImplementedError, AttributeError):  # grpcio-testing's context
        return ""


def _unset_code(context: grpc.ServicerContext) -> grpc.StatusCode:
    """OK for a method that returned normally; CANCELLED when its call had already ended.

    A call cancelled under the method (the client gave up, or a stop passed its grace and the
    caller got UNAVAILABLE) still returns from the handler later; its reply goes nowhere, so
    its line must not say OK.
    """
    return grpc.StatusCode.OK if context.is_active() else grpc.StatusCode.CANCELLED


def _code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """The status code the method set or aborted with (None: it set none).

    grpcio's server context has had ``code()`` since 1.38; the typeshed stubs lack it.
    """
    code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
    return code
