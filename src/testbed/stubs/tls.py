"""A throwaway certificate authority (trustme) so tests exercise real TLS verification."""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsMaterial:
    """A server SSL context for 127.0.0.1/localhost and the CA bundle a client must trust."""

    server_context: ssl.SSLContext
    ca_bundle: Path  # PEM file of the CA, for the client: ssl.create_default_context(cafile=...)
    ca_pem: bytes
    owned_dir: Path | None = None  # the temporary folder make_tls created (removed by cleanup)

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


def make_tls(directory: Path | None = None) -> TlsMaterial:
    """Create a fresh CA and a server certificate for 127.0.0.1, ::1 and localhost."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
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
    return TlsMaterial(server_context=context, ca_bundle=bundle, ca_pem=pem, owned_dir=owned)
