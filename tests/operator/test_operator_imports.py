"""What the operator loads at start: libraries it uses only in rare cases stay unloaded, since
every module imported is resident memory for the process's whole life."""

import subprocess
import sys

#: Loaded on first use only: signature checks (the station API verifies signed reviews; the
#: operator reads a reviewer key only when its policy lists one).
NOT_AT_START = ("cryptography",)


def test_starting_the_operator_does_not_load_what_it_rarely_uses() -> None:
    probe = (
        "import sys, pht_operator.app\n"
        f"print(sorted(m for m in {NOT_AT_START!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert loaded.stdout.strip() == "[]"


def test_a_policy_with_a_trusted_key_still_reads_it() -> None:
    """The first key read loads the library where it is needed."""
    probe = (
        "import sys\n"
        "from pht_contract.reviewerkeys import load_public_key\n"
        "from cryptography.hazmat.primitives.asymmetric import ed25519\n"
        "from cryptography.hazmat.primitives import serialization\n"
        "key = ed25519.Ed25519PrivateKey.generate().public_key()\n"
        "pem = key.public_bytes(serialization.Encoding.PEM,"
        " serialization.PublicFormat.SubjectPublicKeyInfo).decode()\n"
        "print(load_public_key(pem).algorithm)"
    )
    read = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert read.stdout.strip() == "ed25519"
