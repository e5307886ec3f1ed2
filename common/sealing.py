"""Sealing of secrets a service must read back (Fernet: AES-128-CBC + HMAC-SHA256).

A storage's secret access key is shown to its customer on every ``GET …/credentials``, and
a webhook endpoint's signing secret signs every delivery, so neither can be a hash: they
are stored only sealed with a server key, inside an event that is never published (never
in a read model, a log line or a published event). Whoever reads the database without the
key learns nothing.

Keys (``<NAME>`` is the service's setting, e.g. ``STORAGE_SECRETS_KEY``): one or more
Fernet keys, comma-separated (generate one with ``python -c "from cryptography.fernet
import Fernet; print(Fernet.generate_key().decode())"``); the first seals, every one
unseals, so a server key is replaced by putting the new one first and dropping the old one
once every secret was renewed since. When it is empty, the key in ``<NAME>_FILE`` (default
``var/<name>.key``) is used, generated there (mode 0600) on first start — fine for one
machine; set ``<NAME>`` from the environment for replicas on several hosts.
"""

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)


class SecretBox:
    """Seals and unseals with the given Fernet keys (the first seals). ``keys`` may be a
    callable returning them, read on first use — so a service that never handles a secret
    never creates a key file."""

    def __init__(self, keys, setting="the server key"):
        self._keys = keys
        self._cipher = None
        self.setting = setting

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
            raise RuntimeError(f"a sealed secret does not open with {self.setting} (was the key changed?)")


def _key_from_file(path, setting):
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(Fernet.generate_key().decode() + "\n")
        log.warning("generated a secrets key file; set %s for several hosts", setting, extra={"path": str(path)})
    return path.read_text().strip()


def secret_box(config, setting="STORAGE_SECRETS_KEY"):
    """The ``SecretBox`` of the service's config under ``setting`` (see the module docstring)."""
    given = str(config.get(setting) or "")
    keys = [k for k in given.split(",") if k.strip()]
    if keys:
        box = SecretBox(keys, setting)
        box.seal("check")  # a malformed key stops the service at start
        return box
    default_file = f"var/{setting.lower().removesuffix('_key').replace('_', '-')}.key"
    return SecretBox(lambda: [_key_from_file(config.get(f"{setting}_FILE") or default_file, setting)], setting)
