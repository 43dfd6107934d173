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

    #: Namespaces whose Trains, StationPolicy and TrainApprovals this station honours
    #: (comma-separated in the environment). Trains elsewhere are not watched.
    station_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["pht-requests"]
    )
    #: The station-owned namespace where runs execute (researchers cannot read it).
    run_namespace: str = "pht-runs"
    #: The station API's internal listener as the operator reaches it.
    station_api_url: str = "http://pht-station-api-internal:8081"
    #: The internal listener **by IP address** as runs reach it (runs have no DNS).
    run_api_url: str = "http://10.96.0.50:8081"
    #: The internal listener's port, opened by the run's NetworkPolicy.
    run_api_port: int = Field(default=8081, ge=1, le=65535)
    #: Label selector (``k=v``) of the station API pods, the only egress a run gets. Must not
    #: be empty (an empty selector would open every pod of the namespace).
    run_api_pod_labels: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: {"app.kubernetes.io/component": "station-api"}
    )
    #: Namespace of the station API pods (``PHT_OPERATOR_STATION_API_NAMESPACE``): the run's
    #: NetworkPolicy selects those pods in this namespace only. Default: the operator's own
    #: namespace (its service-account namespace file); required where that file is absent,
    #: unless ``run_api_url`` is a loopback address (station in a box).
    station_api_namespace: str | None = None
    #: The operator's credential for the station API (or a file holding it).
    api_token: str | None = None
    api_token_file: Path | None = None
    #: Constant ``station`` label on every metric.
    station_name: str = "station"
    #: Address the health and metrics endpoints listen on: every interface in a pod,
    #: ``127.0.0.1`` for a station in a box (``PHT_OPERATOR_LISTEN_HOST``).
    listen_host: str = "0.0.0.0"
    health_port: int = Field(default=8080, ge=0, le=65535)
    metrics_port: int = Field(default=9090, ge=0, le=65535)
    #: Server-side timeout of watch requests; liveness fails after ``stall_factor`` of these
    #: without a watch event, bookmark or list.
    watch_timeout_seconds: float = Field(default=60.0, gt=0)
    stall_factor: float = Field(default=3.0, ge=1)
    #: ``ttlSecondsAfterFinished`` set on a Job once its outcome is recorded.
    job_ttl_seconds: int = Field(default=3600, ge=0)
    run_uid: int = Field(default=65532, ge=1)
    run_gid: int = Field(default=65532, ge=1)
    #: How often non-terminal Trains are re-checked (approval, capacity, progress, release).
    poll_interval_seconds: float = Field(default=10.0, gt=0)
    #: Trains reconciled at the same time.
    workers: int = Field(default=16, ge=1, le=256)
    #: Size limit of the run's scratch emptyDir (HOME, TMPDIR, caches).
    scratch_size: str = "1Gi"
    #: Size limit of the memory-backed /dev/shm for GPU frameworks.
    shm_size: str = "1Gi"
    #: Timeout of one request to the station API.
    station_api_timeout_seconds: float = Field(default=10.0, gt=0)

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
