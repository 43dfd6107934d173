"""Operator configuration: every setting is an environment variable ``PHT_OPERATOR_<NAME>``,
upper case, the field name in capitals (``run_namespace``: ``PHT_OPERATOR_RUN_NAMESPACE``); a
credential may be given as a file instead (``..._FILE``, see :mod:`pht_contract.filevalues`).

``pht operator`` exposes the same settings as flags. Defaults suit the Helm chart; tests and the
station in a box override them.
"""

import ipaddress
import json
import urllib.parse
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pht_contract.filevalues import value_or_file

#: Where a pod finds its own namespace (the default of ``station_api_namespace``).
SERVICE_ACCOUNT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


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

    @field_validator("station_namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

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
