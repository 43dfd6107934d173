"""Operator configuration: every setting is an environment variable ``PHT_OPERATOR_<NAME>``,
upper case, the field name in capitals (``run_namespace``: ``PHT_OPERATOR_RUN_NAMESPACE``); a
credential may be given as a file instead (``..._FILE``, see :mod:`pht_contract.filevalues`).

``pht operator`` exposes the same settings as flags. Defaults suit the Helm chart; tests and the
station in a box override them.
"""

import ipaddress
import json
import re
import urllib.parse
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pht_contract.filevalues import value_or_file

#: Where a pod finds its own namespace (the default of ``station_api_namespace``).
SERVICE_ACCOUNT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
#: What a notification address must look like: one mailbox, no display name, no spaces.
_ADDRESS = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+")


class SettingsError(ValueError):
    """The configuration cannot work; the operator refuses to start and says why."""


def is_loopback_url(url: str) -> bool:
    """``localhost`` or a loopback address: a station in a box, where runs are processes."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OperatorSettings(BaseSettings):
    """What the operator needs to know about its station and its environment."""

    model_config = SettingsConfigDict(
        env_prefix="PHT_OPERATOR_", case_sensitive=False, extra="ignore"
    )

    station_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["pht-requests"],
        description=(
            "Namespaces whose Trains, StationPolicy and TrainApprovals this station honours "
            "(comma-separated in the environment). Trains elsewhere are not watched."
        ),
    )
    run_namespace: str = Field(
        default="pht-runs",
        description="The station-owned namespace where runs execute (researchers cannot read it).",
    )
    station_api_url: str = Field(
        default="http://pht-station-api-internal:8081",
        description="The station API's internal listener as the operator reaches it.",
    )
    run_api_url: str = Field(
        default="http://10.96.0.50:8081",
        description="The internal listener **by IP address** as runs reach it (runs have no DNS).",
    )
    run_api_port: int = Field(
        default=8081,
        ge=1,
        le=65535,
        description="The internal listener's port, opened by the run's NetworkPolicy.",
    )
    run_api_pod_labels: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: {"app.kubernetes.io/component": "station-api"},
        description=(
            "Label selector (``k=v``) of the station API pods, the only egress a run gets. Must "
            "not be empty (an empty selector would open every pod of the namespace)."
        ),
    )
    station_api_namespace: str | None = Field(
        default=None,
        description=(
            "Namespace of the station API pods (``PHT_OPERATOR_STATION_API_NAMESPACE``): the "
            "run's NetworkPolicy selects those pods in this namespace only. Default: the "
            "operator's own namespace (its service-account namespace file); required where that "
            "file is absent, unless ``run_api_url`` is a loopback address (station in a box)."
        ),
    )
    api_token: str | None = Field(
        default=None,
        description="The operator's credential for the station API's internal listener.",
    )
    api_token_file: Path | None = Field(
        default=None,
        description=(
            "A file holding the operator's credential (a mounted Secret); read at each call, and "
            "preferred over the value."
        ),
    )
    station_name: str = Field(
        default="station", description="Constant ``station`` label on every metric."
    )
    listen_host: str = Field(
        default="0.0.0.0",
        description=(
            "Address the health and metrics endpoints listen on: every interface in a pod, "
            "``127.0.0.1`` for a station in a box (``PHT_OPERATOR_LISTEN_HOST``)."
        ),
    )
    health_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Port of /healthz and /readyz (0: no health endpoint).",
    )
    metrics_port: int = Field(
        default=9090,
        ge=0,
        le=65535,
        description="Port of the operator's Prometheus metrics (0: no metrics endpoint).",
    )
    watch_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Server-side timeout of watch requests, in seconds."
    )
    stall_factor: float = Field(
        default=3.0,
        ge=1,
        description=(
            "Liveness fails after this many watch timeouts without a watch event, bookmark or list."
        ),
    )
    job_ttl_seconds: int = Field(
        default=3600,
        ge=0,
        description="``ttlSecondsAfterFinished`` set on a Job once its outcome is recorded.",
    )
    run_uid: int = Field(
        default=65532, ge=1, description="Numeric user id every run's container runs as."
    )
    run_gid: int = Field(
        default=65532,
        ge=1,
        description="Numeric group id every run's container runs as (also its fsGroup).",
    )
    poll_interval_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "How often non-terminal Trains are re-checked (approval, capacity, progress, release)."
        ),
    )
    workers: int = Field(
        default=16, ge=1, le=256, description="Trains reconciled at the same time."
    )
    scratch_size: str = Field(
        default="1Gi",
        description="Size limit of the run's scratch emptyDir (HOME, TMPDIR, caches).",
    )
    shm_size: str = Field(
        default="1Gi", description="Size limit of the memory-backed /dev/shm for GPU frameworks."
    )
    station_api_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of one request to the station API."
    )

    # --- Notifications: stewards learn that an approval or a held result waits --------------
    notify_console_url: str = Field(
        default="",
        description=(
            "Base URL of the steward console as stewards open it (e.g. "
            "https://station.hospital.example); notifications link to its /console pages. "
            "Empty: they name the path only."
        ),
    )
    notify_smtp_host: str = Field(
        default="", description="The hospital's SMTP relay (empty: no e-mail is sent)."
    )
    notify_smtp_port: int = Field(default=587, ge=1, le=65535, description="The relay's port.")
    notify_smtp_starttls: bool = Field(
        default=True,
        description=(
            "Require STARTTLS with a verified certificate before sending (false only for a "
            "relay on the same host or inside a trusted network)."
        ),
    )
    notify_smtp_username: str = Field(
        default="", description="User name for the relay (empty: no authentication)."
    )
    notify_smtp_password_file: Path | None = Field(
        default=None,
        description="A file holding the relay password (a mounted Secret); read at each mail.",
    )
    notify_smtp_from: str = Field(default="", description="Sender address of notifications.")
    notify_smtp_to: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Recipient addresses, the stewards (comma-separated in the environment).",
    )
    notify_webhook_url: str = Field(
        default="",
        description=(
            "HTTPS URL that receives a signed JSON POST per notification (empty: no webhook)."
        ),
    )
    notify_webhook_secret_file: Path | None = Field(
        default=None,
        description=(
            "A file holding the webhook's HMAC-SHA256 key (a mounted Secret); read at each POST."
        ),
    )
    notify_ca_file: Path | None = Field(
        default=None,
        description=(
            "PEM bundle of the authorities trusted for the relay's STARTTLS and the webhook's "
            "HTTPS (default: the system's)."
        ),
    )
    notify_max_per_minute: int = Field(
        default=10,
        ge=1,
        le=1000,
        description=(
            "Most notifications sent per minute; further ones are gathered into one summary."
        ),
    )
    notify_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of one delivery (mail or webhook)."
    )
    notify_queue_size: int = Field(
        default=100,
        ge=1,
        le=10000,
        description="Notifications waiting to be sent at most; more are dropped and counted.",
    )

    @field_validator("station_namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("notify_smtp_to", mode="before")
    @classmethod
    def _split_recipients(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("notify_smtp_from", "notify_smtp_to")
    @classmethod
    def _addresses(cls, value: str | list[str]) -> str | list[str]:
        for address in [value] if isinstance(value, str) else value:
            if address and not _ADDRESS.fullmatch(address):
                raise ValueError(f"not an e-mail address: {address!r}")
        return value

    @field_validator("notify_console_url")
    @classmethod
    def _console_url(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value)
        if value and (parts.scheme not in ("https", "http") or not parts.hostname):
            raise ValueError(
                f"PHT_OPERATOR_NOTIFY_CONSOLE_URL must be an http(s) URL, not {value!r}"
            )
        return value.rstrip("/")

    @field_validator("notify_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value)
        if value and (parts.scheme != "https" or not parts.hostname):
            raise ValueError(
                f"PHT_OPERATOR_NOTIFY_WEBHOOK_URL must be an https:// URL, not {value!r}: the "
                "notification is signed, but it should not travel in clear text"
            )
        return value

    @model_validator(mode="after")
    def _notification_channels_complete(self) -> Self:
        if self.notify_smtp_host and not (self.notify_smtp_from and self.notify_smtp_to):
            raise ValueError(
                "PHT_OPERATOR_NOTIFY_SMTP_HOST is set: give PHT_OPERATOR_NOTIFY_SMTP_FROM and "
                "PHT_OPERATOR_NOTIFY_SMTP_TO as well"
            )
        if self.notify_smtp_password_file and not self.notify_smtp_username:
            raise ValueError(
                "PHT_OPERATOR_NOTIFY_SMTP_PASSWORD_FILE needs PHT_OPERATOR_NOTIFY_SMTP_USERNAME"
            )
        if self.notify_smtp_username and not self.notify_smtp_starttls:
            raise ValueError(
                "PHT_OPERATOR_NOTIFY_SMTP_USERNAME needs PHT_OPERATOR_NOTIFY_SMTP_STARTTLS: the "
                "relay password would cross the network in clear text"
            )
        if self.notify_webhook_url and not self.notify_webhook_secret_file:
            raise ValueError(
                "PHT_OPERATOR_NOTIFY_WEBHOOK_URL is set: give "
                "PHT_OPERATOR_NOTIFY_WEBHOOK_SECRET_FILE, the key its receiver checks the "
                "signature with"
            )
        return self

    @field_validator("run_api_pod_labels", mode="before")
    @classmethod
    def _split_labels(cls, value: object) -> object:
        if isinstance(value, str) and value.lstrip().startswith("{"):
            return json.loads(value)
        if isinstance(value, str):
            pairs = (part.split("=", 1) for part in value.split(",") if part.strip())
            return {key.strip(): val.strip() for key, val in pairs}
        return value

    @field_validator("run_api_url")
    @classmethod
    def _address_required(cls, value: str) -> str:
        host = urllib.parse.urlsplit(value).hostname or ""
        if is_loopback_url(value):
            return value
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"PHT_OPERATOR_RUN_API_URL must name the station API by IP address, not "
                f"{host!r}: runs have no DNS. Give the internal Service's ClusterIP, e.g. "
                "http://10.96.0.50:8081"
            ) from None
        return value

    @field_validator("run_api_pod_labels")
    @classmethod
    def _labels_required(cls, value: dict[str, str]) -> dict[str, str]:
        if not value or not all(key.strip() for key in value):
            raise ValueError(
                "PHT_OPERATOR_RUN_API_POD_LABELS must name the station API pods' labels "
                "(k=v,...): an empty selector would open every pod to the runs"
            )
        return value

    @model_validator(mode="after")
    def _own_namespace(self) -> Self:
        if not self.station_api_namespace and SERVICE_ACCOUNT_NAMESPACE_FILE.is_file():
            self.station_api_namespace = SERVICE_ACCOUNT_NAMESPACE_FILE.read_text().strip() or None
        return self

    def check_startup(self) -> None:
        """Refuse configurations that would start runs with a wrong NetworkPolicy."""
        if not self.station_api_namespace and not is_loopback_url(self.run_api_url):
            raise SettingsError(
                "set PHT_OPERATOR_STATION_API_NAMESPACE to the station API's namespace: the "
                "run's NetworkPolicy admits the station API pods of that namespace only, and "
                "the operator's own namespace is unknown (no service-account namespace file)"
            )

    def station_api_token(self) -> str | None:
        """The credential, read from the file at each call so a rotated Secret is picked up."""
        return value_or_file(self.api_token, self.api_token_file)
