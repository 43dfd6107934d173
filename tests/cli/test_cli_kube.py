"""``pht pending`` and friends reach Kubernetes through the kubeconfig, as kubectl does."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from cli_kit import TRAINS_PATH, Recorder, train, train_list, write_kubeconfig

from pht_cli.main import kubectl_plugin, main


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


def _serve_trains(server: Recorder, namespace: str, *names: str) -> None:
    trains = [train(namespace, name, "AwaitingApproval") for name in names]
    trains.append(train(namespace, "done", "Succeeded"))
    server.answer("GET", TRAINS_PATH.format(ns=namespace), 200, train_list(*trains))


def test_missing_kubeconfig_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["pending", "--kubeconfig", str(missing)]) == 2
    assert str(missing) in _one_line_error(capsys.readouterr().err)


def test_no_kubeconfig_anywhere_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["pending"]) == 2
    assert "--kubeconfig" in _one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize(
    "content",
    ["clusters: [unclosed", "just a string", "clusters: []\ncontexts: []\n"],
    ids=["yaml-syntax", "not-a-mapping", "no-context"],
)
def test_invalid_kubeconfig_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    assert main(["approve", "km", "--kubeconfig", str(path)]) == 2
    assert str(path) in _one_line_error(capsys.readouterr().err)


def test_unknown_context_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_kubeconfig(tmp_path / "k.yaml", "http://127.0.0.1:9")
    assert main(["pending", "--kubeconfig", str(config), "--context", "elsewhere"]) == 2
    assert "elsewhere" in _one_line_error(capsys.readouterr().err)


def test_unreachable_api_server_names_its_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        address = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = write_kubeconfig(tmp_path / "k.yaml", address)
    assert main(["pending", "--kubeconfig", str(config)]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert f"cannot reach the Kubernetes API server at {address}" in line


def test_pending_lists_trains_of_the_context_namespace(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_trains(server, "hospital-a", "km", "km2")
    config = write_kubeconfig(
        tmp_path / "k.yaml",
        server.url,
        user={"token": "steward-token"},
        namespace="hospital-a",
    )
    assert main(["pending", "--kubeconfig", str(config), "-v"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAMESPACE", "NAME", "SPEC", "HASH", "REQUESTER", "IMAGE"]
    assert out[1].split()[:3] == ["hospital-a", "km", "a" * 12]
    assert out[2].strip() == "needs 1 more steward"  # -v: what is missing
    assert "done" not in "\n".join(out)
    assert server.seen[0].authorization == "Bearer steward-token"


def test_pending_follows_the_selected_context(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_trains(server, "hospital-b", "km")
    config = write_kubeconfig(
        tmp_path / "k.yaml", server.url, namespace="hospital-a", extra_contexts={"b": "hospital-b"}
    )
    assert main(["pending", "--kubeconfig", str(config), "--context", "b"]) == 0
    assert "hospital-b" in capsys.readouterr().out
    assert [s.path for s in server.seen] == [TRAINS_PATH.format(ns="hospital-b")]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_pending_prints_json_and_yaml(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    _serve_trains(server, "ns1", "km")
    config = write_kubeconfig(tmp_path / "k.yaml", server.url, namespace="ns1")
    assert main(["pending", "--kubeconfig", str(config), "-o", fmt]) == 0
    text = capsys.readouterr().out
    items = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    assert [(i["namespace"], i["name"], i["specHash"]) for i in items] == [("ns1", "km", "a" * 64)]


def test_pending_with_nothing_to_approve(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.answer("GET", TRAINS_PATH.format(ns="default"), 200, train_list())
    config = write_kubeconfig(tmp_path / "k.yaml", server.url)
    assert main(["pending", "--kubeconfig", str(config)]) == 0
    assert capsys.readouterr().out == "no Train awaits approval\n"
    assert main(["pending", "--kubeconfig", str(config), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_api_refusal_is_one_line(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forbidden = {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "no\nway"}
    server.answer("GET", TRAINS_PATH.format(ns="default"), 403, forbidden)
    config = write_kubeconfig(tmp_path / "k.yaml", server.url)
    assert main(["pending", "--kubeconfig", str(config)]) == 1
    assert "403 Forbidden: no way" in _one_line_error(capsys.readouterr().err)


def test_global_flags_before_the_command(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_trains(server, "ns2", "km")
    config = write_kubeconfig(
        tmp_path / "k.yaml", server.url, namespace="ns1", extra_contexts={"other": "ns3"}
    )
    argv = ["--kubeconfig", str(config), "--context", "other", "-n", "ns2", "pending"]
    assert main(argv) == 0
    assert "ns2" in capsys.readouterr().out
    assert [s.path for s in server.seen] == [TRAINS_PATH.format(ns="ns2")]


def test_a_commands_own_flag_wins_over_the_global_one(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_trains(server, "ns1", "km")
    config = write_kubeconfig(tmp_path / "k.yaml", server.url)
    assert main(["-n", "ns2", "pending", "-n", "ns1", "--kubeconfig", str(config)]) == 0
    assert [s.path for s in server.seen] == [TRAINS_PATH.format(ns="ns1")]


def test_kubectl_plugin_entry_point_runs_the_same_cli(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_trains(server, "ns1", "km")
    config = write_kubeconfig(tmp_path / "k.yaml", server.url)
    assert kubectl_plugin(["--kubeconfig", str(config), "-n", "ns1", "pending"]) == 0
    assert "km" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        kubectl_plugin(["--help"])
    assert capsys.readouterr().out.startswith("usage: kubectl pht")
