"""TLS for a client's channel: the CA that signs the daemon's certificate, and for mTLS the
client's own certificate and key. Files are read when the client is made; their contents (the
key above all) never appear in a repr, a log line or an error.

The CLI takes them from `--tls-ca/--tls-cert/--tls-key`, else $STEWARD_TLS_CA,
$STEWARD_TLS_CERT and $STEWARD_TLS_KEY; with none of these it connects without TLS.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import grpc

TLS_CA_ENV: Final = "STEWARD_TLS_CA"
TLS_CERT_ENV: Final = "STEWARD_TLS_CERT"
TLS_KEY_ENV: Final = "STEWARD_TLS_KEY"


class TlsConfigError(ValueError):
    """The TLS options cannot be used: a file missing or unreadable, a cert without its key."""


@dataclass(frozen=True)
class TlsOptions:
    """PEM file paths. `ca_file` None: the system's root CAs. `cert_file` and `key_file`
    together: present a client certificate (mTLS). `server_name`: the name to check the
    daemon's certificate against, when it differs from the address's host."""

    ca_file: str | Path | None = None
    cert_file: str | Path | None = None
    key_file: str | Path | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise TlsConfigError("a client certificate needs its key: give both or neither")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None) -> TlsOptions | None:
        """The given paths, each else its environment variable; None when none is set."""
        env = os.environ if environ is None else environ
        ca = ca_file or env.get(TLS_CA_ENV) or None
        cert = cert_file or env.get(TLS_CERT_ENV) or None
        key = key_file or env.get(TLS_KEY_ENV) or None
        if ca is None and cert is None and key is None:
            return None
        return cls(ca, cert, key)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file, "CA"),
            private_key=_read(self.key_file, "key"),
            certificate_chain=_read(self.cert_file, "certificate"))

    def channel_options(self) -> list[tuple[str, str]]:
        return [] if self.server_name is None else [
            ("grpc.ssl_target_name_override", self.server_name)]


def _read(path: str | Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"cannot read the TLS {what} file {path}: "
                             f"{exc.strerror or type(exc).__name__}") from None
    if b"-----BEGIN " not in data:
        raise TlsConfigError(f"the TLS {what} file {path} is not PEM")
    return data
