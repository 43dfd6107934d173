"""Configuration of the station API: every environment variable, in one place.

All variables carry the prefix ``PHT_API_`` and name a field in capitals (``store``:
``PHT_API_STORE``), as the operator's settings do;
``docs/station-api.md`` lists them. Secrets may be given as a file (``*_FILE``), which is what a
mounted Kubernetes Secret provides; when both are given the file wins
(:mod:`pht_contract.filevalues`). ``IDENTITY_MODE=local`` exists for the station in a box
only: the Helm chart renders ``kubernetes`` unconditionally.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pht_contract.filevalues import value_or_file


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHT_API_", case_sensitive=False)

    # Data: embedded Oxigraph directory, or the hospital's own SPARQL endpoint.
    store: Path | None = Field(
        default=None,
        description=(
            "Directory of the embedded Oxigraph data store; unset when a SPARQL endpoint is used."
        ),
    )
    sparql_endpoint: str | None = Field(
        default=None,
        description=(
            "The hospital's own SPARQL endpoint (GraphDB, Virtuoso, ...) instead of the embedded "
            "store."
        ),
    )
    sparql_user: str | None = Field(
        default=None, description="User name for the SPARQL endpoint, if it asks for one."
    )
    sparql_password: str | None = Field(
        default=None, description="Password for the SPARQL endpoint."
    )
    sparql_password_file: Path | None = Field(
        default=None,
        description="A file holding the SPARQL endpoint's password (a mounted Secret).",
    )

    # Station-owned state; each defaults to a folder below STATE_DIR.
    state_dir: Path = Field(
        default=Path("pht-state"),
        description=(
            "Directory of the station's own state; the audit store, chain head, results and "
            "registrations default to places below it."
        ),
    )
    audit_store: Path | None = Field(
        default=None,
        description=(
            "Directory of the provenance (audit) store; default: audit/ below the state directory."
        ),
    )
    chain_head_file: Path | None = Field(
        default=None,
        description=(
            "File the provenance chain's heads are appended to; put it on another volume than the"
            " audit store."
        ),
    )
    results_dir: Path | None = Field(
        default=None,
        description="Directory of the result archive; default: results/ below the state directory.",
    )
    registry_file: Path | None = Field(
        default=None,
        description=(
            "File of the registered runs; default: registrations.json below the state directory."
        ),
    )

    internal_host: str = Field(
        default="0.0.0.0", description="Address of the internal listener (runs and the operator)."
    )
    internal_port: int = Field(
        default=8081, description="Port of the internal listener (runs and the operator)."
    )
    external_host: str = Field(
        default="0.0.0.0",
        description="Address of the external listener (FAIR Data Point, stewards, requesters).",
    )
    external_port: int = Field(
        default=8080,
        description="Port of the external listener (FAIR Data Point, stewards, requesters).",
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address of the metrics listener.")
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description=(
            "Port of the metrics listener (Prometheus metrics only); none when unset. It needs a "
            "metrics token."
        ),
    )
    metrics_token: str | None = Field(
        default=None,
        description=(
            "Bearer token scrapers present; without it the metrics listener does not start."
        ),
    )
    metrics_token_file: Path | None = Field(
        default=None, description="A file holding the metrics bearer token (a mounted Secret)."
    )
    metrics_snapshot_seconds: float = Field(
        default=60.0,
        ge=1.0,
        le=3600.0,
        description=(
            "Scrapes see the metrics as they stood at this tick of the wall clock (seconds)."
        ),
    )

    operator_token: str | None = Field(
        default=None, description="The operator's credential on the internal listener."
    )
    operator_token_file: Path | None = Field(
        default=None, description="A file holding the operator's credential (a mounted Secret)."
    )

    identity_mode: Literal["kubernetes", "local"] = Field(
        default="kubernetes",
        description=(
            "How people are identified: kubernetes (TokenReview and SubjectAccessReview), or "
            "local (a file of tokens, for the station in a box only)."
        ),
    )
    local_identities_file: Path | None = Field(
        default=None, description="The file of tokens and rules for local identity mode."
    )
    kubeconfig: Path | None = Field(
        default=None,
        description="A kubeconfig file for the reviews; unset, the three settings below are used.",
    )
    kubernetes_api_url: str = Field(
        default="https://kubernetes.default.svc",
        description=(
            "The Kubernetes API server the reviews are sent to (in a pod: the in-cluster address)."
        ),
    )
    kubernetes_token_file: Path = Field(
        default=Path("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        description="The service-account token the reviews are made with.",
    )
    kubernetes_ca_file: Path | None = Field(
        default=Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"),
        description="The CA bundle that verifies the Kubernetes API server.",
    )
    identity_cache_seconds: float = Field(
        default=10.0,
        ge=0.0,
        le=300.0,
        description=(
            "How long a TokenReview or SubjectAccessReview answer is reused (0: ask every time)."
        ),
    )

    # console sign-in (OpenID Connect)
    console_oidc_issuer: str | None = Field(
        default=None,
        description=(
            "The hospital's OpenID provider stewards sign in to the console with (its issuer URL,"
            " as in its ID tokens); no sign-in when unset."
        ),
    )
    console_oidc_client_id: str | None = Field(
        default=None, description="The console's client ID at the OpenID provider."
    )
    console_oidc_client_secret_file: Path | None = Field(
        default=None,
        description="A file holding the console's client secret (a mounted Secret).",
    )
    console_oidc_ca_file: Path | None = Field(
        default=None,
        description=(
            "The CA bundle that verifies the OpenID provider; unset, the system's trusted CAs."
        ),
    )
    console_oidc_redirect_url: str | None = Field(
        default=None,
        description=(
            "The console's callback as the provider knows it: "
            "https://STATION/console/signin/callback."
        ),
    )
    console_oidc_scopes: str = Field(
        default="openid email groups",
        description="The scopes the console asks the OpenID provider for (space-separated).",
    )
    console_oidc_username_claim: str = Field(
        default="email",
        description=(
            "The ID token claim the console shows as the steward's name (the API server maps"
            " its own)."
        ),
    )

    station_name: str = Field(
        default="station",
        max_length=63,
        description="The station's name: the constant station label on metrics and in provenance.",
    )
    public_base_url: str = Field(
        default="http://localhost:8080",
        description=(
            "Public base URL of the FAIR Data Point (the external Service or the Ingress host)."
        ),
    )
    internal_base_url: str = Field(
        default="http://station-api-internal:8081",
        description=(
            "The internal URL trains use; the FDP distribution's access URL points at its gateway."
        ),
    )
    policy_file: Path | None = Field(
        default=None,
        description=(
            "A StationPolicy file, for a station API that runs without the operator (station in a"
            " box, run-local)."
        ),
    )

    # The steward console (/console/ on the external listener).
    console_namespaces: str = Field(
        default="pht-requests",
        max_length=4096,
        description="Comma-separated station namespaces whose Trains the console lists.",
    )
    console_session_seconds: int = Field(
        default=8 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        description="Longest a console session lasts (seconds); a sign-in may end it earlier.",
    )
    console_max_sessions: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description=(
            "Most console sessions kept (at most 5 per account); when full, the account "
            "holding the most gives up its session closest to its end."
        ),
    )
    console_local_login_file: Path | None = Field(
        default=None,
        description=(
            "Station in a box only: a file of scrypt password hashes for the console's local "
            "login; the external listener must be on a loopback address. The Helm chart cannot"
            " set it."
        ),
    )

    progress_tick_seconds: int = Field(
        default=30,
        ge=1,
        le=3600,
        description=(
            "A train's reported progress becomes visible only at multiples of this many seconds."
        ),
    )

    query_workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description=(
            "Killable query workers (processes) kept ready; a timed-out query costs one respawn."
        ),
    )
    max_request_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description=(
            "Largest request body on any listener; a route may declare its own (see bodylimits.py)."
        ),
    )
    max_load_bytes: int = Field(
        default=1024**3,
        ge=1024,
        description=(
            "Largest RDF upload accepted by the operator's load endpoint (its own body limit)."
        ),
    )

    def read_operator_token(self) -> str | None:
        return value_or_file(self.operator_token, self.operator_token_file)

    def read_metrics_token(self) -> str | None:
        return value_or_file(self.metrics_token, self.metrics_token_file)

    def read_sparql_password(self) -> str | None:
        return value_or_file(self.sparql_password, self.sparql_password_file)

    @property
    def audit_store_dir(self) -> Path:
        return self.audit_store or self.state_dir / "audit"

    @property
    def chain_head_path(self) -> Path:
        return self.chain_head_file or self.state_dir / "chain-head.json"

    @property
    def results_path(self) -> Path:
        return self.results_dir or self.state_dir / "results"

    @property
    def registry_path(self) -> Path:
        return self.registry_file or self.state_dir / "registrations.json"
