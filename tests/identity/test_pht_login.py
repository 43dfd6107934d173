"""`pht login` against a real provider, with a scripted browser step, and `pht credentials
oidc`, the kubeconfig's exec credential plugin that hands its ID token to kubectl and pht."""

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from identity_tokens import claims_of

from pht_sandbox.controlplane.oidcprovider import (
    CLI_CLIENT_ID,
    OpenIdProvider,
    SignInRefused,
    sign_in_on_loopback,
)


def pht(args: list[str], cache: Path, **extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), **extra}
    return subprocess.Popen(
        [sys.executable, "-m", "pht_cli.main", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def provider_flags(provider: OpenIdProvider) -> list[str]:
    return [
        "--issuer",
        provider.issuer,
        "--client-id",
        CLI_CLIENT_ID,
        "--ca-file",
        str(provider.ca),
    ]


def lines(stream: object) -> Iterator[str]:
    assert hasattr(stream, "readline")
    while line := stream.readline():
        yield line


def login(provider: OpenIdProvider, cache: Path, role: str = "steward") -> str:
    running = pht(["login", *provider_flags(provider), "--no-browser", "--timeout", "60"], cache)
    page = sign_in_on_loopback(provider, provider.people[role], lines(running.stderr))
    assert "Signed in" in page
    out, err = running.communicate(timeout=30)
    assert running.returncode == 0, err
    return out


def credential(provider: OpenIdProvider, cache: Path, **extra: str) -> tuple[int, str, str]:
    running = pht(["credentials", "oidc", *provider_flags(provider)], cache, **extra)
    out, err = running.communicate(timeout=60)
    return running.returncode, out, err


def cached(cache: Path) -> tuple[Path, dict[str, object]]:
    (path,) = (cache / "pht" / "oidc").glob("*.json")
    return path, json.loads(path.read_text())


def test_login_keeps_a_verified_id_token_that_only_the_user_can_read(
    provider: OpenIdProvider, tmp_path: Path
) -> None:
    printed = login(provider, tmp_path)
    assert printed.startswith("Signed in as erin@hospital.example")
    path, record = cached(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    claims = claims_of(str(record["id_token"]))
    assert (claims["iss"], claims["aud"], claims["email"]) == (
        provider.issuer,
        CLI_CLIENT_ID,
        "erin@hospital.example",
    )
    assert record["refresh_token"]

    code, out, err = credential(provider, tmp_path)
    assert code == 0, err
    exec_credential = json.loads(out)
    assert exec_credential["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert exec_credential["kind"] == "ExecCredential"
    assert exec_credential["status"]["token"] == record["id_token"]
    expiry = exec_credential["status"]["expirationTimestamp"]
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(str(claims["exp"])))) == expiry

    # kubectl says which version it reads in KUBERNETES_EXEC_INFO.
    info = json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "spec": {}})
    code, out, _ = credential(provider, tmp_path, KUBERNETES_EXEC_INFO=info)
    assert json.loads(out)["apiVersion"] == "client.authentication.k8s.io/v1"


def test_an_id_token_about_to_expire_is_refreshed(provider: OpenIdProvider, tmp_path: Path) -> None:
    login(provider, tmp_path)
    path, record = cached(tmp_path)
    before = str(record["id_token"])
    path.write_text(json.dumps({**record, "expires_at": int(time.time()) + 10}))
    time.sleep(1.1)  # iat has a resolution of one second

    code, out, err = credential(provider, tmp_path)

    assert code == 0, err
    token = json.loads(out)["status"]["token"]
    assert token != before
    assert claims_of(token)["iat"] > claims_of(before)["iat"]
    assert claims_of(token)["email"] == "erin@hospital.example"
    _, now = cached(tmp_path)
    assert now["id_token"] == token and int(str(now["expires_at"])) > time.time() + 3000


def test_plugins_run_at_once_refresh_once_and_agree(
    provider: OpenIdProvider, tmp_path: Path
) -> None:
    """kubectl may start the plugin several times at once; the provider takes each (rotated)
    refresh token only once, so they must not all refresh."""
    login(provider, tmp_path)
    path, record = cached(tmp_path)
    path.write_text(json.dumps({**record, "expires_at": int(time.time()) + 10}))
    time.sleep(1.1)  # a token refreshed within the same second could equal the first
    running = [pht(["credentials", "oidc", *provider_flags(provider)], tmp_path) for _ in range(4)]
    answers = [process.communicate(timeout=60) for process in running]
    assert [process.returncode for process in running] == [0, 0, 0, 0], answers
    tokens = {json.loads(out)["status"]["token"] for out, _ in answers}
    assert len(tokens) == 1 and tokens != {record["id_token"]}


def test_without_a_sign_in_the_plugin_says_how_to_sign_in(
    provider: OpenIdProvider, tmp_path: Path
) -> None:
    code, out, err = credential(provider, tmp_path)
    assert (code, out) == (2, "")
    assert err.strip() == (
        f"error: not signed in to {provider.issuer}: run 'pht login --issuer {provider.issuer} "
        f"--client-id {CLI_CLIENT_ID} --ca-file {provider.ca}'"
    )


def test_a_refresh_token_the_provider_refuses_means_signing_in_again(
    provider: OpenIdProvider, tmp_path: Path
) -> None:
    login(provider, tmp_path)
    path, record = cached(tmp_path)
    stale = {**record, "expires_at": int(time.time()) - 5, "refresh_token": "revoked-or-made-up"}
    path.write_text(json.dumps(stale))
    code, out, err = credential(provider, tmp_path)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: the sign-in has expired at {provider.issuer}: run 'pht login")


def test_a_wrong_password_gets_no_tokens(provider: OpenIdProvider, tmp_path: Path) -> None:
    running = pht(["login", *provider_flags(provider), "--no-browser", "--timeout", "3"], tmp_path)
    person = provider.people["steward"]
    impostor = type(person)(person.username, "guessed", person.email, person.groups)
    with pytest.raises(SignInRefused, match="refused"):
        sign_in_on_loopback(provider, impostor, lines(running.stderr))
    _, err = running.communicate(timeout=30)
    assert running.returncode == 2
    assert err.strip().endswith("error: no sign-in within 3 s")
    assert not (tmp_path / "pht" / "oidc").exists()


def test_the_callback_ignores_an_answer_to_another_sign_in(
    provider: OpenIdProvider, tmp_path: Path
) -> None:
    running = pht(["login", *provider_flags(provider), "--no-browser", "--timeout", "60"], tmp_path)
    printed = lines(running.stderr)
    url = next(line for line in printed if line.startswith(provider.issuer)).strip()
    callback = httpx.URL(httpx.URL(url).params["redirect_uri"])
    assert (callback.scheme, callback.host, callback.path) == ("http", "127.0.0.1", "/callback")
    for state in ("not-mine", "é-not-ascii"):
        forged = httpx.get(callback.copy_merge_params({"code": "stolen", "state": state}))
        assert forged.status_code == 400
    assert running.poll() is None  # still waiting for its own answer
    page = sign_in_on_loopback(provider, provider.people["researcher"], iter([url]))
    assert "Signed in" in page
    out, err = running.communicate(timeout=30)
    assert running.returncode == 0, err
    assert "Traceback" not in err
    assert out.startswith("Signed in as grace@hospital.example")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--issuer", "http://idp.example", "--client-id", "x"], "must be an https:// URL"),
        (["--issuer", "https://127.0.0.1:9", "--client-id", "x"], "cannot reach the identity"),
    ],
)
def test_bad_provider_settings_are_one_line_errors(
    tmp_path: Path, args: list[str], message: str
) -> None:
    running = pht(["login", *args, "--no-browser"], tmp_path)
    _, err = running.communicate(timeout=60)
    assert running.returncode == 2
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("shared", ["folder open to others", "file open to others", "not mine"])
def test_the_plugin_hands_out_no_token_from_a_cache_others_could_have_written(
    provider: OpenIdProvider, tmp_path: Path, shared: str
) -> None:
    """Someone who can write the cache could put their own tokens there and have kubectl act
    as them in this user's name (or read this user's): the plugin refuses such a cache."""
    if shared == "not mine" and os.getuid() != 0:
        pytest.skip("only root can give a file to another user")
    login(provider, tmp_path)
    path, _ = cached(tmp_path)
    if shared == "folder open to others":
        path.parent.chmod(0o777)
    elif shared == "file open to others":
        path.chmod(0o666)
    else:
        os.chown(path, 65534, 65534)
    code, out, err = credential(provider, tmp_path)
    assert (code, out) == (2, "")
    assert "is not private to this user" in err and "Traceback" not in err
