"""Self-signed certificates for the lab's TLS binds, made with the openssl CLI.

    make_pem(path, "example.com", "www.example.com")

writes one PEM holding the certificate and its key, the form `bind ... ssl crt`
takes (HAProxy's too). An EC P-256 key keeps generation fast.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path


def make_pem(path: Path, *names: str) -> Path:
    """A self-signed certificate for ``names`` (the first is also the subject's CN)
    and its private key, in one PEM at ``path``."""
    if not names:
        raise ValueError("make_pem: at least one DNS name is needed")
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", f"/CN={names[0]}",
             "-addext", "subjectAltName=" + ",".join(f"DNS:{n}" for n in names),
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=30,
        )
        path.write_bytes(cert.read_bytes() + key.read_bytes())
    return path
