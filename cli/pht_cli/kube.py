"""Which Kubernetes cluster the CLI talks to, as whom, and in which namespace.

The kubeconfig is found as kubectl finds it: ``--kubeconfig``, else the first file of
``$KUBECONFIG``, else ``~/.kube/config``, else the in-cluster service account. ``--context``
picks a context other than the current one; the namespace defaults to the context's.
Every problem with the kubeconfig or the connection becomes one :class:`~pht_cli.errors.CliError`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx2
import lightkube
import yaml
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.core.exceptions import ConfigError
from lightkube.generic_resource import create_namespaced_resource

from pht_cli.errors import CliError, one_line
from pht_contract import constants

TRAINS: Final = create_namespaced_resource(
    constants.API_GROUP, constants.API_VERSION, constants.TRAIN_KIND, constants.TRAIN_PLURAL
)
POLICIES: Final = create_namespaced_resource(
    constants.API_GROUP, constants.API_VERSION, constants.POLICY_KIND, constants.POLICY_PLURAL
)
APPROVALS: Final = create_namespaced_resource(
    constants.API_GROUP, constants.API_VERSION, constants.APPROVAL_KIND, constants.APPROVAL_PLURAL
)

DEFAULT_KUBECONFIG: Final = Path("~/.kube/config")
TIMEOUT_SECONDS: Final = 15.0
FIELD_MANAGER: Final = "pht-cli"


def add_kubeconfig_options(parser: argparse.ArgumentParser) -> None:
    """``--kubeconfig`` and ``--context``, as kubectl spells them."""
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        metavar="FILE",
        help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)",
    )
    parser.add_argument(
        "--context",
        default=None,
        metavar="NAME",
        help="kubeconfig context to use (default: the current context)",
    )


@dataclass(frozen=True)
class KubeTarget:
    """One selected kubeconfig context: cluster, user and default namespace."""

    config: SingleConfig
    source: str

    @property
    def namespace(self) -> str:
        return str(self.config.namespace)

    @property
    def server(self) -> str:
        return str(self.config.cluster.server)

    @property
    def user_name(self) -> str:
        return str(self.config.context.user or "unknown")


def _kubeconfig_file(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    for candidate in listed:
        if Path(candidate).expanduser().is_file():
            return Path(candidate)
    if listed:
        return Path(listed[0])  # named but missing: say so rather than fall back silently
    default = DEFAULT_KUBECONFIG.expanduser()
    return default if default.is_file() else None


def load_target(kubeconfig: Path | None, context: str | None = None) -> KubeTarget:
    """Read the kubeconfig and select a context, or raise one-line :class:`CliError`."""
    path = _kubeconfig_file(kubeconfig)
    source = str(path) if path is not None else "the in-cluster service account"
    if path is None:
        try:
            config = KubeConfig.from_service_account()
        except (ConfigError, KeyError, OSError):
            raise CliError(
                "no kubeconfig: give --kubeconfig FILE or set KUBECONFIG (there is no "
                "~/.kube/config, and this is not a pod)"
            ) from None
    elif not path.expanduser().is_file():
        raise CliError(f"kubeconfig {path} not found")
    try:
        if path is not None:
            config = KubeConfig.from_file(path)
        single = config.get(context)
    except ConfigError as exc:
        raise CliError(f"cannot use kubeconfig {source}: {one_line(exc)}") from None
    except KeyError as exc:
        raise CliError(f"cannot use kubeconfig {source}: missing or unknown entry {exc}") from None
    except (yaml.YAMLError, TypeError, ValueError, AttributeError) as exc:
        reason = one_line(exc)
        raise CliError(
            f"cannot use kubeconfig {source}: not a valid kubeconfig ({reason})"
        ) from None
    if single is None:
        raise CliError(f"kubeconfig {source} has no current context: give --context")
    return KubeTarget(single, source)


def client(target: KubeTarget) -> lightkube.Client:
    """A synchronous lightkube client for the selected context."""
    try:
        return lightkube.Client(
            config=target.config,
            namespace=target.namespace,
            timeout=httpx2.Timeout(TIMEOUT_SECONDS),
            field_manager=FIELD_MANAGER,
            trust_env=False,
        )
    except (ConfigError, OSError, ValueError) as exc:
        raise CliError(f"cannot use kubeconfig {target.source}: {one_line(exc)}") from None


@contextlib.contextmanager
def reporting_connection_errors(target: KubeTarget) -> Iterator[None]:
    """Turn a failed connection into one line naming the API server."""
    try:
        yield
    except httpx2.TransportError as exc:
        reason = one_line(exc) or type(exc).__name__
        raise CliError(
            f"cannot reach the Kubernetes API server at {target.server}: {reason}"
        ) from None
    except ConfigError as exc:  # e.g. an exec credential plugin that failed
        raise CliError(f"cannot log in with kubeconfig {target.source}: {one_line(exc)}") from None


def get_or_none(kube: lightkube.Client, resource: Any, namespace: str, name: str) -> Any:
    """The object as a plain dict, or ``None`` when it does not exist."""
    try:
        obj = kube.get(resource, name, namespace=namespace)
    except httpx2.HTTPStatusError as exc:
        if exc.response.status_code == 404:
            return None
        raise
    return as_dict(obj)


def as_dict(obj: Any) -> dict[str, Any]:
    """A lightkube generic object as a plain dict."""
    return dict(obj.to_dict())


def new_object(resource: Any, body: dict[str, Any]) -> Any:
    """A lightkube generic object of ``resource`` holding ``body``."""
    return resource(body)


def api_error_text(exc: httpx2.HTTPStatusError) -> str:
    """``<code> <reason>: <message>`` from the API server's Status answer."""
    response = exc.response
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"{response.status_code} {response.reason_phrase}"
    reason = body.get("reason") or response.reason_phrase
    return f"{response.status_code} {reason}: {one_line(body.get('message', ''))}"
