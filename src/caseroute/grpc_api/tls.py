"""TLS for the server and its clients; with client certificates, the caller identity audited.

Mutual TLS is how a caller is authenticated: the server requires a certificate signed by the
configured client CA, and the certificate's subject alternative names (or common name) become
the ``caller`` recorded with every decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from caseroute.domain.errors import ConfigError


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True, slots=True)
class ServerTls:
    """Server TLS settings.

    Attributes:
        cert: PEM certificate chain of the server.
        key: PEM private key of the server.
        client_ca: PEM CA bundle for client certificates; set, every client must present a
            certificate it signed (mutual TLS), and its identity is audited as ``caller``.
    """

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        """The server credentials for gRPC.

        Raises:
            ConfigError: If a file cannot be read.
        """
        pair = (_read(self.key, "--tls-key"), _read(self.cert, "--tls-cert"))
        ca = _read(self.client_ca, "--tls-client-ca") if self.client_ca else None
        return grpc.ssl_server_credentials(
            [pair], root_certificates=ca, require_client_auth=ca is not None
        )


@dataclass(frozen=True, slots=True)
class ClientTls:
    """Client TLS settings (``caseroute decide --server``, ``caseroute health``).

    Attributes:
        ca: PEM CA bundle that signed the server's certificate.
        cert: PEM client certificate, for servers requiring mutual TLS.
        key: PEM client private key.
    """

    ca: Path
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        """The channel credentials for gRPC.

        Raises:
            ConfigError: If a file cannot be read, or only one of cert and key is given.
        """
        if (self.cert is None) != (self.key is None):
            raise ConfigError("--tls-cert and --tls-key go together: give both or neither")
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca, "--tls-ca"),
            private_key=_read(self.key, "--tls-key") if self.key else None,
            certificate_chain=_read(self.cert, "--tls-cert") if self.cert else None,
        )


def open_channel(target: str, tls: ClientTls | None) -> grpc.Channel:
    """A channel to ``target``: TLS when settings are given, else plaintext."""
    if tls is None:
        return grpc.insecure_channel(target)
    return grpc.secure_channel(target, tls.credentials())
