"""Station API commands present the kubeconfig user's bearer token when none is given."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_kit import Recorder, write_kubeconfig

from pht_cli.credentials import is_local_or_encrypted
from pht_cli.main import main

HELD = "/stewards/held"
ITEM = {
    "namespace": "pht-requests",
    "name": "km",
    "rule": "ManualReleaseRequired",
    "decidedAt": "2026-01-01T00:00:00Z",
    "findings": ["small cell", "free text"],
}


def _exec_plugin(tmp_path: Path, token: str, exit_code: int = 0) -> Path:
    """A credential plugin as kubectl runs it: prints an ExecCredential on stdout."""
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"token": token},
    }
    script = tmp_path / "credential-plugin"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"print({json.dumps(json.dumps(credential))})\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _exec_user(script: Path) -> dict[str, Any]:
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": str(script),
            "args": [],
            "interactiveMode": "Never",
        }
    }


def _held(server: Recorder, *extra: str) -> int:
    server.answer("GET", HELD, 200, {"items": [ITEM]})
    return main(["held", "--url", server.url, *extra])


@pytest.fixture
def kinds_of_user(tmp_path: Path) -> dict[str, tuple[dict[str, Any], str]]:
    token_file = tmp_path / "sa-token"
    token_file.write_text("file-token\n")
    return {
        "static token": ({"token": "static-token"}, "static-token"),
        "token file": ({"tokenFile": str(token_file)}, "file-token"),
        "exec plugin": (_exec_user(_exec_plugin(tmp_path, "oidc-token")), "oidc-token"),
    }


@pytest.mark.parametrize("kind", ["static token", "token file", "exec plugin"])
def test_the_kubeconfig_users_token_reaches_the_station_api(
    server: Recorder,
    tmp_path: Path,
    kinds_of_user: dict[str, tuple[dict[str, Any], str]],
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    user, token = kinds_of_user[kind]
    config = write_kubeconfig(tmp_path / "k.yaml", "https://k8s.invalid:6443", user=user)
    assert _held(server, "--kubeconfig", str(config)) == 0
    assert [s.authorization for s in server.seen] == [f"Bearer {token}"]
    assert "pht-requests/km" in capsys.readouterr().out


def test_kubeconfig_from_the_environment_and_context(
    server: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_kubeconfig(
        tmp_path / "k.yaml", "https://k8s.invalid:6443", user={"token": "env-token"}
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    assert _held(server) == 0
    assert server.seen[-1].authorization == "Bearer env-token"


def test_an_explicit_token_wins_over_the_kubeconfig(
    server: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_kubeconfig(tmp_path / "k.yaml", "https://x.invalid", user={"token": "kube"})
    assert _held(server, "--kubeconfig", str(config), "--token", "flag") == 0
    monkeypatch.setenv("PHT_TOKEN", "env")
    assert _held(server, "--kubeconfig", str(config)) == 0
    token_file = tmp_path / "t"
    token_file.write_text("from-file\n")
    assert _held(server, "--kubeconfig", str(config), "--token-file", str(token_file)) == 0
    assert [s.authorization for s in server.seen] == [
        "Bearer flag",
        "Bearer env",
        "Bearer from-file",
    ]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_client_certificate_cannot_be_forwarded(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"}
    config = write_kubeconfig(tmp_path / "k.yaml", "https://x.invalid", user=user)
    assert _held(server, "--kubeconfig", str(config)) == 2
    line = _one_line(capsys.readouterr().err)
    assert "client certificate" in line and "--token-file" in line
    assert server.seen == []


def test_a_failing_credential_plugin_is_one_line(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = _exec_user(_exec_plugin(tmp_path, "never", exit_code=3))
    config = write_kubeconfig(tmp_path / "k.yaml", "https://x.invalid", user=user)
    assert _held(server, "--kubeconfig", str(config)) == 2
    assert "returned 3" in _one_line(capsys.readouterr().err)
    assert server.seen == []


def test_no_token_and_no_kubeconfig_says_how_to_give_one(
    server: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _held(server) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--token, --token-file or $PHT_TOKEN" in line
    assert server.seen == []


@pytest.mark.parametrize("fmt", ["json", "yaml", "table", "text"])
def test_held_output_formats(
    server: Recorder, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    import yaml

    assert _held(server, "--token", "t", "-o", fmt) == 0
    out = capsys.readouterr().out
    if fmt in ("json", "yaml"):
        assert (json.loads(out) if fmt == "json" else yaml.safe_load(out)) == [ITEM]
    else:
        header, row = out.splitlines()
        assert header.split() == ["TRAIN", "RULE", "DECIDED", "FINDINGS"]
        assert row.split()[:3] == ["pht-requests/km", "ManualReleaseRequired", ITEM["decidedAt"]]
        assert row.endswith("small cell; free text")


@pytest.mark.parametrize("url", ["http://station.example.org", "http://10.0.0.7:8080"])
def test_the_kubeconfig_token_never_travels_unencrypted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    plugin = _exec_plugin(tmp_path, "oidc-token")
    config = write_kubeconfig(tmp_path / "k.yaml", "https://x.invalid", user=_exec_user(plugin))
    ran = tmp_path / "plugin-ran"
    plugin.write_text(
        plugin.read_text().replace("import sys\n", f"import sys; open({str(ran)!r}, 'w')\n")
    )
    assert main(["held", "--url", url, "--kubeconfig", str(config)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"not sending your kubeconfig credential to {url} unencrypted" in line
    assert not ran.exists()  # the credential was not even obtained


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://station.example.org", True),
        ("https://10.0.0.7:8443", True),
        ("http://127.0.0.1:8080", True),
        ("http://[::1]:8080", True),
        ("http://localhost:8080", True),
        ("http://station.example.org", False),
        ("http://127.0.0.1.example.org", False),
        ("http://10.0.0.7:8080", False),
    ],
)
def test_where_the_kubeconfig_token_may_go(url: str, allowed: bool) -> None:
    assert is_local_or_encrypted(url) is allowed
