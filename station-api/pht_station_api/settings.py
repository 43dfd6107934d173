"""Configuration of the station API: every environment variable, in one place.

All variables carry the prefix ``PHT_API_`` (``PHT_API_STORE``, ``PHT_API_OPERATOR_TOKEN`` …);
``docs/station-api.md`` lists them. Secrets may be given as a file (``*_FILE``), which is what a
mounted Kubernetes Secret provides. ``IDENTITY_MODE=local`` exists for the station in a box
only: the Helm chart renders ``kubernetes`` unconditionally.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _read_secret(value: str | None, file: Path | None) -> str | None:
    if value:
        return value
    if file is not None:
        return file.read_text(encoding="utf-8").strip() or None
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHT_API_", case_sensitive=False)

    # Data: embedded Oxigraph directory, or the hospital's own SPARQL endpoint.
    STORE: Path | None = None
    SPARQL_ENDPOINT: str | None = None
    SPARQL_USER: str | None = None
    SPARQL_PASSWORD: str | None = None
    SPARQL_PASSWORD_FILE: Path | None = None

    # Station-owned state; each defaults to a folder below STATE_DIR.
    STATE_DIR: Path = Path("pht-state")
    AUDIT_STORE: Path | None = None
    CHAIN_HEAD_FILE: Path | None = None
    RESULTS_DIR: Path | None = None
    REGISTRY_FILE: Path | None = None

    INTERNAL_HOST: str = "0.0.0.0"
    INTERNAL_PORT: int = 8081
    EXTERNAL_HOST: str = "0.0.0.0"
    EXTERNAL_PORT: int = 8080
    #: The third listener, Prometheus metrics only; none when unset. It needs METRICS_TOKEN.
    METRICS_HOST: str = "0.0.0.0"
    METRICS_PORT: int | None = Field(default=None, ge=1, le=65535)
    #: Scrapers present this as a bearer token; without it the metrics listener does not start.
    METRICS_TOKEN: str | None = None
    METRICS_TOKEN_FILE: Path | None = None
    #: Scrapes see the metrics as they stood at this tick of the wall clock (seconds).
    METRICS_SNAPSHOT_SECONDS: float = Field(default=60.0, ge=1.0, le=3600.0)

    OPERATOR_TOKEN: str | None = None
    OPERATOR_TOKEN_FILE: Path | None = None

    IDENTITY_MODE: Literal["kubernetes", "local"] = "kubernetes"
    LOCAL_IDENTITIES_FILE: Path | None = None
    #: A kubeconfig file for the reviews; unset, the three settings below are used.
    KUBECONFIG: Path | None = None
    KUBERNETES_API_URL: str = "https://kubernetes.default.svc"
    KUBERNETES_TOKEN_FILE: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    KUBERNETES_CA_FILE: Path | None = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    #: How long a TokenReview or SubjectAccessReview answer is reused (0: ask every time).
    IDENTITY_CACHE_SECONDS: float = Field(default=10.0, ge=0.0, le=300.0)

    STATION_NAME: str = Field(default="station", max_length=63)
    PUBLIC_BASE_URL: str = "http://localhost:8080"
    #: The internal URL trains use; the FDP distribution's access URL points at its gateway.
    INTERNAL_BASE_URL: str = "http://station-api-internal:8081"
    POLICY_FILE: Path | None = None

    #: A train's reported progress becomes visible only at multiples of this many seconds.
    PROGRESS_TICK_SECONDS: int = Field(default=30, ge=1, le=3600)

    #: Killable query workers (processes) kept ready; a timed-out query costs one respawn.
    QUERY_WORKERS: int = Field(default=2, ge=1, le=64)
    #: Largest request body on any listener; a route may declare its own (see bodylimits.py).
    MAX_REQUEST_BYTES: int = Field(default=1_048_576, ge=1024)
    #: Largest RDF upload accepted by the operator's load endpoint (its own body limit).
    MAX_LOAD_BYTES: int = Field(default=1024**3, ge=1024)

    def operator_token(self) -> str | None:
        return _read_secret(self.OPERATOR_TOKEN, self.OPERATOR_TOKEN_FILE)

    def metrics_token(self) -> str | None:
        return _read_secret(self.METRICS_TOKEN, self.METRICS_TOKEN_FILE)

    def sparql_password(self) -> str | None:
        return _read_secret(self.SPARQL_PASSWORD, self.SPARQL_PASSWORD_FILE)

    @property
    def audit_store_dir(self) -> Path:
        return self.AUDIT_STORE or self.STATE_DIR / "audit"

    @property
    def chain_head_path(self) -> Path:
        return self.CHAIN_HEAD_FILE or self.STATE_DIR / "chain-head.json"

    @property
    def results_dir(self) -> Path:
        return self.RESULTS_DIR or self.STATE_DIR / "results"

    @property
    def registry_path(self) -> Path:
        return self.REGISTRY_FILE or self.STATE_DIR / "registrations.json"
