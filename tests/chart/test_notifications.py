"""The chart's `notifications` values reach the operator: its environment configures both
channels, its secrets come mounted from existing Secrets (never as values), and incomplete or
unsafe values are refused at install."""

from collections.abc import Callable
from typing import Any

import pytest

from .rendering import helm_template, one

Render = Callable[[str], list[dict[str, Any]]]


def _operator(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_notifications_are_off_by_default(render: Render) -> None:
    pod, env = _operator(render("default"))
    assert not [name for name in env if name.startswith("PHT_OPERATOR_NOTIFY_")]
    assert not [v["name"] for v in pod["volumes"] if v["name"].startswith("notifications-")]


def test_the_rendered_environment_configures_both_channels(
    render: Render, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pht_operator.notifications import channels_of
    from pht_operator.settings import OperatorSettings

    pod, env = _operator(render("notifications"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = OperatorSettings()
    assert [channel.name for channel in channels_of(settings)] == ["smtp", "webhook"]
    assert settings.notify_smtp_host == "smtp.hospital.example.org"
    assert settings.notify_smtp_starttls is True and settings.notify_smtp_port == 587
    assert settings.notify_smtp_to == ["data-stewards@hospital.example.org"]
    assert settings.notify_console_url == "https://station.hospital.example.org"
    assert settings.notify_webhook_url == "https://hooks.hospital.example.org/pht"

    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    files = {
        "notifications-smtp": (settings.notify_smtp_password_file, "pht-smtp-relay", "password"),
        "notifications-webhook": (
            settings.notify_webhook_secret_file,
            "pht-notification-webhook",
            "secret",
        ),
    }
    for volume, (path, secret, key) in files.items():
        assert str(path) == f"{mounts[volume]}/{key}"
        assert volumes[volume]["secret"]["secretName"] == secret
        assert volumes[volume]["secret"]["items"] == [{"key": key, "path": key}]
    assert str(settings.notify_ca_file) == f"{mounts['notifications-ca']}/ca.crt"
    assert volumes["notifications-ca"]["configMap"]["name"] == "hospital-ca"


BAD_VALUES = [
    ({"notifications.smtp.enabled": "true"}, "at '/notifications/smtp/host'"),
    (
        {
            "notifications.smtp.enabled": "true",
            "notifications.smtp.host": "relay",
            "notifications.smtp.from": "pht@hospital.example",
        },
        "at '/notifications/smtp/to'",
    ),
    (
        {"notifications.smtp.to[0]": "Stewards <s@hospital.example>"},
        "at '/notifications/smtp/to/0'",
    ),
    ({"notifications.smtp.username": "pht"}, "at '/notifications/smtp/passwordSecret/name'"),
    (
        {
            "notifications.smtp.username": "pht",
            "notifications.smtp.passwordSecret.name": "relay",
            "notifications.smtp.starttls": "false",
        },
        "at '/notifications/smtp/starttls'",
    ),
    (
        {"notifications.webhook.enabled": "true", "notifications.webhook.url": "http://hook/x"},
        "at '/notifications/webhook/url'",
    ),
    (
        {"notifications.webhook.enabled": "true", "notifications.webhook.url": "https://hook/x"},
        "at '/notifications/webhook/secret/name'",
    ),
    ({"notifications.maxPerMinute": "0"}, "at '/notifications/maxPerMinute'"),
    ({"notifications.consoleUrl": "javascript:alert(1)"}, "at '/notifications/consoleUrl'"),
]


@pytest.mark.parametrize(("sets", "message"), BAD_VALUES)
def test_incomplete_or_unsafe_notification_values_are_refused(
    sets: dict[str, str], message: str
) -> None:
    result = helm_template(sets=sets)
    assert result.returncode != 0, f"{sets} was accepted"
    assert message in result.stderr, result.stderr
