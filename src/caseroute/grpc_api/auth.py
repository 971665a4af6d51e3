"""Who may call which service: bearer tokens and mTLS allow-lists, checked by one interceptor.

Each caseroute service may have a policy: tokens (``authorization: Bearer <token>`` metadata,
from a token file of ``<identity> <token>`` lines) and/or client-certificate identities on an
allow-list (mutual TLS). ``RulesetAdmin`` is always protected: with no policy configured every
admin call is refused. ``DecisionLog`` and ``RoutingService`` are protected only when their
policy is configured. Health and reflection stay open.

=========================================  =================  ==============================
the call                                   status             note
=========================================  =================  ==============================
a token or allow-listed identity passes    (served)           identity handed to the servicer
no credentials                             UNAUTHENTICATED    says what to send
``authorization`` not ``Bearer <token>``   UNAUTHENTICATED    says the form
a token nobody has / identity not listed   PERMISSION_DENIED
RulesetAdmin with no policy configured     UNAUTHENTICATED    says how to configure the server
=========================================  =================  ==============================

Tokens are compared with ``hmac.compare_digest`` against every configured token (no early
exit), and never logged, not even on refusal: a refusal logs the method and the peer address.
"""

from __future__ import annotations

import contextvars
import hmac
import ipaddress
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import grpc

from caseroute.audit.config import refuse_shared_secret
from caseroute.domain.errors import ConfigError

log = logging.getLogger("caseroute.auth")

MIN_TOKEN_CHARS = 16
"""Shortest token a token file may hold (``openssl rand -hex 32`` gives 64)."""
MAX_TOKEN_FILE_BYTES = 1024 * 1024
"""Largest token file read."""
MAX_IDENTITY_CHARS = 200
"""Longest identity in a token file or on an allow-list."""

_NEEDS_CREDENTIALS = (
    "this call needs credentials: send `authorization: Bearer <token>` or a client "
    "certificate on the allow-list"
)
_BAD_SCHEME = (
    "the `authorization` metadata must read `Bearer <token>`; send the token the operators "
    "gave you in that form"
)
_DENIED = (
    "these credentials are not allowed to call this service; ask the operators for a token "
    "or an allow-listed client certificate"
)
_ADMIN_UNCONFIGURED = (
    "ruleset administration is not enabled on this server: the operators must start it with "
    "--admin-token-file FILE (lines `<identity> <token>`) or --admin-allow IDENTITY (mutual "
    "TLS); see docs/security.md"
)


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Who passed the check of the call running on this thread.

    Attributes:
        identity: The token's identity from the token file, or the allow-listed certificate
            identity; "" when the service has no policy.
        by_token: True when a bearer token authenticated the call.
    """

    identity: str
    by_token: bool


_CURRENT: contextvars.ContextVar[Authenticated | None] = contextvars.ContextVar(
    "caseroute_authenticated", default=None
)


def authenticated() -> Authenticated | None:
    """The credentials that passed for the call running on this thread (None: unchecked)."""
    return _CURRENT.get()


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Who may call one service.

    Attributes:
        tokens: ``(identity, token)`` pairs accepted as bearer tokens.
        allow: Client-certificate identities accepted (mutual TLS).
    """

    tokens: tuple[tuple[str, bytes], ...] = ()
    allow: frozenset[str] = field(default_factory=frozenset)

    @property
    def configured(self) -> bool:
        """True when any credential is accepted."""
        return bool(self.tokens or self.allow)

    def token_identity(self, token: bytes) -> str | None:
        """The identity whose token is ``token``, compared in constant time with every token."""
        found = None
        for identity, known in self.tokens:
            if hmac.compare_digest(known, token):
                found = identity
        return found


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Where each service's policy comes from (``caseroute serve`` flags); picklable for workers.

    Attributes:
        admin_token_file: Token file for RulesetAdmin (``--admin-token-file``).
        admin_allow: Certificate identities for RulesetAdmin (``--admin-allow``).
        audit_token_file: Token file for DecisionLog (``--audit-token-file``).
        audit_allow: Certificate identities for DecisionLog (``--audit-allow``).
        caller_token_file: Token file for RoutingService (``--caller-token-file``).
        caller_allow: Certificate identities for RoutingService (``--caller-allow``).
    """

    admin_token_file: Path | None = None
    admin_allow: tuple[str, ...] = ()
    audit_token_file: Path | None = None
    audit_allow: tuple[str, ...] = ()
    caller_token_file: Path | None = None
    caller_allow: tuple[str, ...] = ()

    def policies(self) -> tuple[AccessPolicy, AccessPolicy, AccessPolicy]:
        """The admin, audit and caller policies, token files read now.

        Raises:
            ConfigError: If a token file cannot be read, is accessible to other users, or is
                malformed, or an allow-listed identity is empty or too long.
        """
        return (
            _policy(self.admin_token_file, self.admin_allow, "--admin-token-file", "--admin-allow"),
            _policy(self.audit_token_file, self.audit_allow, "--audit-token-file", "--audit-allow"),
            _policy(
                self.caller_token_file, self.caller_allow, "--caller-token-file", "--caller-allow"
            ),
        )


def listens_beyond_host(host: str) -> bool:
    """True unless ``host`` (a ``--host`` value) is this machine's own loopback address.

    ``localhost`` and the loopback ranges (``127.0.0.0/8``, ``::1``) stay on the machine;
    anything else, a name included (it may resolve to any interface), may be reached from the
    network.
    """
    name = host.strip().removeprefix("[").removesuffix("]")
    if name.lower() == "localhost":
        return False
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(name)
    except ValueError:
        try:  # the shorthand the resolver reads too: 127.1 is 127.0.0.1
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return True  # a name: it may resolve to any interface
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    return not address.is_loopback


def open_service_warnings(host: str, audit: AccessPolicy, caller: AccessPolicy) -> tuple[str, ...]:
    """What to tell the operator about services left open on a listener others can reach.

    ``DecisionLog`` and ``RoutingService`` are open when their policy is not configured (the
    defaults suit a server on loopback, e.g. a sidecar); on any other address anyone who can
    reach the port may read the decision log (masked records, agent ids, routing history) or
    route cases into it. One sentence per open service, saying which flags close it.
    """
    if not listens_beyond_host(host):
        return ()
    found = []
    if not audit.configured:
        found.append(
            f"DecisionLog is open to anyone who can reach {host}: they can read every "
            "recorded decision (masked); protect it with --audit-token-file FILE or "
            "--audit-allow IDENTITY (docs/security.md)"
        )
    if not caller.configured:
        found.append(
            f"RoutingService is open to anyone who can reach {host}: they can route cases "
            "and write to the decision log; protect it with --caller-token-file FILE or "
            "--caller-allow IDENTITY (docs/security.md)"
        )
    return tuple(found)


def _check_identity(identity: str, where: str) -> None:
    if not identity or len(identity) > MAX_IDENTITY_CHARS or not identity.isprintable():
        raise ConfigError(
            f"{where}: an identity must be 1-{MAX_IDENTITY_CHARS} printable characters "
            "without spaces, e.g. admin:alice"
        )


def _policy(
    token_file: Path | None, allow: tuple[str, ...], file_flag: str, allow_flag: str
) -> AccessPolicy:
    for identity in allow:
        _check_identity(identity, allow_flag)
    tokens = read_token_file(token_file, file_flag) if token_file is not None else ()
    return AccessPolicy(tokens, frozenset(allow))


def read_token_file(path: Path, flag: str) -> tuple[tuple[str, bytes], ...]:
    """The ``(identity, token)`` pairs of a token file.

    One ``<identity> <token>`` per line; ``#`` comments and blank lines are ignored. Errors
    name the file and line, never the line's text (it holds a token).

    Args:
        path: The file.
        flag: The flag that named it, for messages.

    Returns:
        The pairs, in file order.

    Raises:
        ConfigError: If the file cannot be read, is accessible to other users, or is
            malformed (a line without exactly two fields, a token shorter than
            ``MIN_TOKEN_CHARS``, an identity or token given twice, no token at all).
    """
    try:
        mode = path.stat().st_mode
        with path.open("rb") as handle:
            raw = handle.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None
    refuse_shared_secret(path, mode, f"{flag}: the token file")
    if len(raw) > MAX_TOKEN_FILE_BYTES:
        raise ConfigError(f"{flag}: {path} is over {MAX_TOKEN_FILE_BYTES} bytes; is it the file?")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise ConfigError(f"{flag}: {path} is not UTF-8 text") from None
    pairs: list[tuple[str, bytes]] = []
    identities: set[str] = set()
    tokens: set[bytes] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{flag}: {path}:{number}"
        parts = stripped.split()
        if len(parts) != 2:
            raise ConfigError(
                f"{where}: expected `<identity> <token>` (two fields separated by a space), "
                f"found {len(parts)} field(s)"
            )
        identity, token = parts[0], parts[1].encode()
        _check_identity(identity, where)
        if len(parts[1]) < MIN_TOKEN_CHARS:
            raise ConfigError(
                f"{where}: the token of {identity} is shorter than {MIN_TOKEN_CHARS} "
                "characters; make one with `openssl rand -hex 32`"
            )
        if identity in identities:
            raise ConfigError(f"{where}: {identity} is given a token twice; keep one line")
        if token in tokens:
            raise ConfigError(
                f"{where}: the token of {identity} is also another identity's token; give "
                "each identity its own"
            )
        identities.add(identity)
        tokens.add(token)
        pairs.append((identity, token))
    if not pairs:
        raise ConfigError(
            f"{flag}: {path} holds no `<identity> <token>` line; add one, or drop the flag"
        )
    return tuple(pairs)


class _RefusedError(Exception):
    """The call does not pass: the status and message the caller gets."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _bearer(metadata: Mapping[str, str | bytes]) -> bytes | None:
    """The bearer token sent, None when no ``authorization`` metadata was sent.

    Raises:
        _RefusedError: UNAUTHENTICATED if the metadata is not ``Bearer <token>``.
    """
    value = metadata.get("authorization")
    if value is None:
        return None
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    scheme, _, token = text.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _RefusedError(grpc.StatusCode.UNAUTHENTICATED, _BAD_SCHEME)
    return token.strip().encode()


def _peer_identities(context: grpc.ServicerContext) -> tuple[str, ...]:
    try:
        identities = context.peer_identities()
    except NotImplementedError:  # grpcio-testing's context has no transport security
        return ()
    return tuple(i.decode(errors="replace") for i in identities or ())


def check_call(
    policy: AccessPolicy,
    required: bool,
    metadata: Mapping[str, str | bytes],
    context: grpc.ServicerContext,
) -> Authenticated:
    """Whether a call passes ``policy``, and as whom.

    Args:
        policy: The service's policy.
        required: True for services never open (RulesetAdmin): no policy refuses every call.
        metadata: The call's invocation metadata.
        context: The call's context (for client-certificate identities).

    Returns:
        Who passed.

    Raises:
        _RefusedError: With UNAUTHENTICATED or PERMISSION_DENIED and the caller's message.
    """
    if not policy.configured:
        if required:
            raise _RefusedError(grpc.StatusCode.UNAUTHENTICATED, _ADMIN_UNCONFIGURED)
        return Authenticated("", by_token=False)
    token = _bearer(metadata)
    if token is not None:
        identity = policy.token_identity(token)
        if identity is not None:
            return Authenticated(identity, by_token=True)
    if policy.allow:
        peers = _peer_identities(context)
        for peer in peers:
            if peer in policy.allow:
                return Authenticated(peer, by_token=False)
        if peers:
            raise _RefusedError(grpc.StatusCode.PERMISSION_DENIED, _DENIED)
    if token is not None:
        raise _RefusedError(grpc.StatusCode.PERMISSION_DENIED, _DENIED)
    raise _RefusedError(grpc.StatusCode.UNAUTHENTICATED, _NEEDS_CREDENTIALS)


def _guard(
    behavior: Callable[[Any, grpc.ServicerContext], Any],
    method: str,
    policy: AccessPolicy,
    required: bool,
    metadata: Mapping[str, str | bytes],
) -> Callable[[Any, grpc.ServicerContext], Any]:
    def guarded(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            who = check_call(policy, required, metadata, context)
        except _RefusedError as refusal:
            # Method and peer only: never the metadata (it holds the token).
            log.warning("%s refused (%s): peer %s", method, refusal.code.name, context.peer())
            _abort(context, refusal)
        reset = _CURRENT.set(who)
        try:
            return behavior(request, context)
        finally:
            _CURRENT.reset(reset)

    return guarded


def _abort(context: grpc.ServicerContext, refusal: _RefusedError) -> NoReturn:
    context.abort(refusal.code, refusal.message)
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


class AuthInterceptor(grpc.ServerInterceptor):
    """Checks every call to a protected service before its servicer runs.

    The check needs the call's transport (client certificate), which only the servicer
    context has, so the unary handler is wrapped rather than refused here.
    """

    def __init__(self, policies: Mapping[str, AccessPolicy], required: frozenset[str]) -> None:
        """Guard the services named in ``policies`` (full names); ``required`` are never open."""
        self._policies = dict(policies)
        self._required = required

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The method's handler, wrapped in the check when its service is guarded."""
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method
        service = method.lstrip("/").split("/", 1)[0]
        policy = self._policies.get(service)
        if handler is None or policy is None:
            return handler
        required = service in self._required
        if not required and not policy.configured:
            return handler
        if handler.unary_unary is None:  # every guarded caseroute method is unary
            return _refusing_handler(method)
        metadata = dict(handler_call_details.invocation_metadata or ())
        return grpc.unary_unary_rpc_method_handler(
            _guard(handler.unary_unary, method, policy, required, metadata),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _refusing_handler(method: str) -> grpc.RpcMethodHandler[Any, Any]:
    def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
        log.error("%s is not unary: the auth interceptor cannot guard it; refused", method)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "this method is not available")

    return grpc.unary_unary_rpc_method_handler(refuse)
