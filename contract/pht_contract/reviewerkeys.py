"""Reviewer keys: the public keys a station trusts to sign image reviews, and their private
halves on the reviewer's side.

A public key is given in PEM as a SubjectPublicKeyInfo (``-----BEGIN PUBLIC KEY-----``);
only ECDSA on P-256 (signatures over SHA-256, DER-encoded) and Ed25519 are accepted. Its key
id is the SHA-256 of the key's DER bytes, in hex. Error messages never repeat the text they
were given: a private key pasted by mistake must not end up in a log.

``cryptography`` is imported when a key is first read, not with this module: the operator
imports the policy model (and so this module) but never reads a key unless a policy lists
one, and the library would add about 11 MiB to its resident memory.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    VerifyingKey: TypeAlias = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
    PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

KeyAlgorithm = Literal["ecdsa-p256", "ed25519"]

#: The longest PEM text a key may be (an Ed25519 or P-256 key is under 200 characters).
MAX_KEY_PEM_CHARS: Final = 4096

_ACCEPTED: Final = "use an ECDSA P-256 or Ed25519 key"
#: One PEM public key and nothing else: no second block, no text around it.
_ONE_PUBLIC_KEY: Final = re.compile(
    r"-----BEGIN PUBLIC KEY-----[A-Za-z0-9+/=\s]+-----END PUBLIC KEY-----"
)


class ReviewerKeyError(ValueError):
    """The text is not a key this station accepts; the message says why and what to do."""


@dataclass(frozen=True)
class ReviewerKey:
    """A public key a review may be signed with."""

    key: VerifyingKey
    algorithm: KeyAlgorithm
    key_id: str

    def verifies(self, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` is this key's signature of ``message``."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519

        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, message)
            else:
                self.key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """A reviewer's private key, and the key id of its public half."""

    key: PrivateKey
    key_id: str

    def sign(self, message: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519

        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(message)
        return self.key.sign(message, ec.ECDSA(hashes.SHA256()))


def key_id(key: VerifyingKey) -> str:
    """The SHA-256 (hex) of the key's SubjectPublicKeyInfo DER bytes."""
    from cryptography.hazmat.primitives import serialization

    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


#: Ed25519's field prime.
_P25519: Final = 2**255 - 19
#: The y coordinates of the Ed25519 points of small order (1, 2, 4 and 8): with such a
#: "public key" a signature made of the neutral point and zero verifies for about one message
#: in eight, so anyone could forge a review by trying a few notes.
_SMALL_ORDER_Y: Final = frozenset(
    {
        0,
        1,
        _P25519 - 1,
        0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826,
        0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7,
    }
)


def _ed25519_has_full_order(key: ed25519.Ed25519PublicKey) -> bool:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    return y < _P25519 and y not in _SMALL_ORDER_Y


def _accepted(key: object, what: str) -> tuple[VerifyingKey, KeyAlgorithm]:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ed25519.Ed25519PublicKey):
        if not _ed25519_has_full_order(key):
            raise ReviewerKeyError(
                f"the {what} is not a usable Ed25519 key: it is a point of small order or not "
                f"canonically encoded, so signatures by it prove nothing; generate a new key"
            )
        return key, "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ReviewerKeyError(
                f"the {what} is an ECDSA key on curve {key.curve.name}; only P-256 "
                f"(secp256r1) is accepted: {_ACCEPTED}"
            )
        return key, "ecdsa-p256"
    if isinstance(key, rsa.RSAPublicKey):
        raise ReviewerKeyError(f"the {what} is an RSA key; RSA is not accepted: {_ACCEPTED}")
    raise ReviewerKeyError(f"the {what} is of a type that is not accepted: {_ACCEPTED}")


def load_public_key(pem: str) -> ReviewerKey:
    """The public key in ``pem`` (SubjectPublicKeyInfo), or :class:`ReviewerKeyError`."""
    if len(pem) > MAX_KEY_PEM_CHARS:
        raise ReviewerKeyError(f"a public key is at most {MAX_KEY_PEM_CHARS} characters of PEM")
    if "PRIVATE KEY-----" in pem:
        raise ReviewerKeyError(
            "this is a private key: give only the public key (-----BEGIN PUBLIC KEY-----), "
            "and treat the private key as disclosed"
        )
    if "CERTIFICATE-----" in pem:
        raise ReviewerKeyError(
            "this is a certificate, not a public key: give its public key "
            "(openssl x509 -pubkey -noout -in CERT) as -----BEGIN PUBLIC KEY-----"
        )
    if "-----BEGIN PUBLIC KEY-----" not in pem:
        raise ReviewerKeyError(
            "a public key must be PEM text starting with -----BEGIN PUBLIC KEY----- "
            "(SubjectPublicKeyInfo)"
        )
    if not _ONE_PUBLIC_KEY.fullmatch(pem.strip()):
        raise ReviewerKeyError(
            "give exactly one public key, its PEM text alone (-----BEGIN PUBLIC KEY----- to "
            "-----END PUBLIC KEY-----): a reader of the policy must see the key that counts"
        )
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        loaded = serialization.load_pem_public_key(pem.encode())
    except (ValueError, UnsupportedAlgorithm):
        raise ReviewerKeyError(
            "the public key's PEM could not be read: give a SubjectPublicKeyInfo "
            "(-----BEGIN PUBLIC KEY-----) of an ECDSA P-256 or Ed25519 key"
        ) from None
    key, algorithm = _accepted(loaded, "public key")
    return ReviewerKey(key, algorithm, key_id(key))


def load_private_key(pem: bytes) -> SigningKey:
    """A reviewer's unencrypted PEM private key (PKCS#8 or the traditional EC form)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if b"PUBLIC KEY-----" in pem and b"PRIVATE KEY-----" not in pem:
        raise ReviewerKeyError("this is a public key: sign with the reviewer's private key")
    try:
        loaded = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise ReviewerKeyError(
            "the private key is encrypted: give an unencrypted PEM key (decrypt a copy with "
            "openssl pkey)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ReviewerKeyError(
            "the private key could not be read: give a PEM private key "
            "(-----BEGIN PRIVATE KEY-----) of an ECDSA P-256 or Ed25519 key"
        ) from None
    if isinstance(loaded, rsa.RSAPrivateKey):
        raise ReviewerKeyError(f"the private key is an RSA key; RSA is not accepted: {_ACCEPTED}")
    if not isinstance(loaded, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise ReviewerKeyError(f"the private key is of a type that is not accepted: {_ACCEPTED}")
    verifying, _ = _accepted(loaded.public_key(), "private key")
    return SigningKey(loaded, key_id(verifying))
