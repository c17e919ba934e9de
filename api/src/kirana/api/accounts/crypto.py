"""Encryption at rest for secrets the server must read back (TOTP seeds, token signing keys).

`SecretBox.from_settings` builds a MultiFernet from `KIRANA_ENCRYPTION_KEYS` (the first key
encrypts, every key decrypts, so keys rotate by adding one in front), or derives one key from
`KIRANA_SECRET_KEY` when none are configured. Also the keyed HMAC used for one-time codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from kirana.api.settings import Settings


class SecretBox:
    def __init__(self, keys: list[bytes], mac_key: bytes) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self._mac_key = mac_key

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        secret = settings.secret_key.get_secret_value().encode()
        keys = [k.get_secret_value().encode() for k in settings.encryption_keys]
        if not keys:
            keys = [base64.urlsafe_b64encode(hashlib.sha256(b"kirana-encryption\x00" + secret).digest())]
        mac_key = hashlib.sha256(b"kirana-mac\x00" + secret).digest()
        return cls(keys, mac_key)

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise ValueError("cannot decrypt: no configured key matches") from exc

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt under the newest key."""
        return self._fernet.rotate(token)

    def mac(self, *parts: str) -> str:
        msg = "\x1f".join(parts).encode()
        return hmac.new(self._mac_key, msg, hashlib.sha256).hexdigest()

    def mac_matches(self, expected: str, *parts: str) -> bool:
        return hmac.compare_digest(expected, self.mac(*parts))
