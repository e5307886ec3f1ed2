"""Sealing of the customers' secret keys at rest (Fernet: AES-128-CBC + HMAC-SHA256).

A storage's secret access key is shown to its customer on every ``GET …/credentials`` (the
panel is where S3 clients are configured from), so the service must be able to read it back;
it is stored only sealed with a server key, inside the ``storage_credentials_issued`` event
(never in a read model, a log line or a published event). Whoever reads the database
without the key learns nothing.

Keys: ``STORAGE_SECRETS_KEY`` — one or more Fernet keys, comma-separated (generate one with
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``);
the first seals, every one unseals, so a server key is replaced by putting the new one first
and dropping the old one once every storage's access key was rotated since. When it
is empty, the key in ``STORAGE_SECRETS_KEY_FILE`` (default ``var/storage-secrets.key``) is
used, generated there (mode 0600) on first start — fine for one machine; set
``STORAGE_SECRETS_KEY`` from the environment for replicas on several hosts.
"""

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)

DEFAULT_KEY_FILE = "var/storage-secrets.key"


class SecretBox:
    """Seals and unseals with the given Fernet keys (the first seals). ``keys`` may be a
    callable returning them, read on first use — so a service that never handles a secret
    never creates a key file."""

    def __init__(self, keys):
        self._keys = keys
        self._cipher = None

    @property
    def _fernet(self):
        if self._cipher is None:
            keys = self._keys() if callable(self._keys) else self._keys
            if not keys:
                raise ValueError("at least one key is needed")
            self._cipher = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        return self._cipher

    def seal(self, secret):
        return self._fernet.encrypt(secret.encode()).decode()

    def unseal(self, sealed):
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise RuntimeError("a sealed secret does not open with STORAGE_SECRETS_KEY (was the key changed?)")


def _key_from_file(path):
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(Fernet.generate_key().decode() + "\n")
        log.warning("generated a storage secrets key file; set STORAGE_SECRETS_KEY for several hosts",
                    extra={"path": str(path)})
    return path.read_text().strip()


def secret_box(config):
    """The ``SecretBox`` of the service's config (see the module docstring)."""
    given = str(config.get("STORAGE_SECRETS_KEY") or "")
    keys = [k for k in given.split(",") if k.strip()]
    if keys:
        box = SecretBox(keys)
        box.seal("check")  # a malformed key stops the service at start
        return box
    return SecretBox(lambda: [_key_from_file(config.get("STORAGE_SECRETS_KEY_FILE") or DEFAULT_KEY_FILE)])
