"""A throwaway certificate authority (trustme) so tests exercise real TLS verification, and the bad
certificates a client must refuse.

The trusted case: a server certificate for 127.0.0.1 / localhost / ::1 signed by a fresh CA whose PEM
bundle the client is given. The faults (``TLS_FAULTS``), each served on an HTTPS port of its own:

  untrusted-ca         a valid certificate for localhost, signed by a CA the client was not given
  expired              signed by the trusted CA, valid for localhost, but expired yesterday
  not-yet-valid        signed by the trusted CA, valid from tomorrow
  wrong-host           signed by the trusted CA, for another host name (wrong.example.test)
  self-signed          a certificate that signed itself
  require-client-cert  the trusted certificate, and the server requires a client certificate signed by
                       the trusted CA (mutual TLS; WireMock's --https-require-client-cert)
"""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from testbed.stubs.errors import StubError

TLS_FAULTS = ("untrusted-ca", "expired", "not-yet-valid", "wrong-host", "self-signed", "require-client-cert")
HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TlsMaterial:
    """A server SSL context for 127.0.0.1/localhost and the CA bundle a client must trust."""

    server_context: ssl.SSLContext
    ca_bundle: Path  # PEM file of the CA, for the client: ssl.create_default_context(cafile=...)
    ca_pem: bytes
    owned_dir: Path | None = None  # the temporary folder make_tls created (removed by cleanup)
    ca: Any = None  # the trustme.CA that signed it (None for material made elsewhere): issues the faults
    folder: Path | None = None  # where certificate files are written
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def cleanup(self) -> None:
        """Remove the temporary folder holding the CA bundle, if make_tls created it."""
        if self.owned_dir is not None:
            import shutil

            from testbed.runners.reaper import current_record

            shutil.rmtree(self.owned_dir, ignore_errors=True)
            current_record().remove_path(self.owned_dir)

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts only this CA."""
        return ssl.create_default_context(cadata=self.ca_pem.decode())

    # -- faults ------------------------------------------------------------------------------------

    def _need_ca(self) -> Any:
        if self.ca is None or self.folder is None:
            raise StubError("TLS faults need the stub server's own throwaway CA (not TLS material given to it)")
        return self.ca

    def fault_context(self, fault: str) -> ssl.SSLContext:
        """The server-side SSL context that presents ``fault`` (one of TLS_FAULTS)."""
        if fault not in TLS_FAULTS:
            raise StubError(f"unknown TLS fault {fault!r}; use one of: {', '.join(TLS_FAULTS)}")
        cached = self._cache.get(fault)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        import trustme

        ca = self._need_ca()
        now = datetime.now(UTC)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if fault == "untrusted-ca":
            trustme.CA().issue_cert(*HOSTS).configure_cert(context)
        elif fault == "expired":
            cert = ca.issue_cert(*HOSTS, not_before=now - timedelta(days=30), not_after=now - timedelta(days=1))
            cert.configure_cert(context)
        elif fault == "not-yet-valid":
            cert = ca.issue_cert(*HOSTS, not_before=now + timedelta(days=1), not_after=now + timedelta(days=30))
            cert.configure_cert(context)
        elif fault == "wrong-host":
            ca.issue_cert("wrong.example.test").configure_cert(context)
        elif fault == "self-signed":
            self_signed = trustme.CA()  # a CA's own certificate is signed by its own key
            key, cert_file = self._write(f"{fault}-key.pem", self_signed.private_key_pem.bytes()), self._write(
                f"{fault}-cert.pem", self_signed.cert_pem.bytes()
            )
            context.load_cert_chain(str(cert_file), str(key))
        else:  # require-client-cert
            ca.issue_cert(*HOSTS).configure_cert(context)
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=self.ca_pem.decode())
        self._cache[fault] = context
        return context

    @property
    def client_cert(self) -> Path:
        """A PEM file with a client certificate (and its key) signed by the trusted CA, for mutual TLS."""
        cached = self._cache.get("client-cert")
        if cached is None:
            leaf = self._need_ca().issue_cert("testbed-client", common_name="testbed-client")
            cached = self._write("client-cert.pem", leaf.private_key_and_cert_chain_pem.bytes())
            self._cache["client-cert"] = cached
        return cached

    def mutual_client_context(self) -> ssl.SSLContext:
        """Trusts the CA and presents ``client_cert``: what a client of a require-client-cert port needs."""
        context = self.client_context()
        context.load_cert_chain(str(self.client_cert))
        return context

    def _write(self, name: str, data: bytes) -> Path:
        assert self.folder is not None
        path = self.folder / name
        path.write_bytes(data)
        path.chmod(0o600)
        return path


def make_tls(directory: Path | None = None) -> TlsMaterial:
    """Create a fresh CA and a server certificate for 127.0.0.1, ::1 and localhost."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert(*HOSTS)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    owned = None
    if directory is None:
        from testbed.runners.reaper import current_record

        owned = Path(tempfile.mkdtemp(prefix="testbed-stub-tls-"))
        # Recorded, so that if this process is SIGKILLed the next run's reaper removes the folder.
        current_record().add_path(owned)
    folder = directory or owned
    assert folder is not None
    bundle = folder / "testbed-stub-ca.pem"
    pem = ca.cert_pem.bytes()
    bundle.write_bytes(pem)
    return TlsMaterial(server_context=context, ca_bundle=bundle, ca_pem=pem, owned_dir=owned, ca=ca, folder=folder)
