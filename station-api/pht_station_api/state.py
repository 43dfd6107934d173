"""The one object a station API process builds at start-up and both listeners share.

Held on ``app.state.station``; routers reach it through :data:`pht_station_api.deps.StateDep`.
Everything that outlives a request lives here: settings, the data store and its workers, the
train registry, the provenance chain, the result archive, metrics and per-token rate limits.
"""

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pht_contract.policies import StationPolicySpec
from pht_station_api.identities import IdentityChecker, LocalIdentities
from pht_station_api.identity_cache import CachedIdentities
from pht_station_api.kubernetes_identities import KubernetesIdentities
from pht_station_api.metrics import Metrics
from pht_station_api.provenance.chain import ProvenanceChain
from pht_station_api.ratelimits import RateLimiter
from pht_station_api.registry import TrainRegistry
from pht_station_api.results.archive import ResultArchive
from pht_station_api.results.metrics import result_metrics
from pht_station_api.settings import Settings
from pht_station_api.triplestores.datastores import DataStore
from pht_station_api.triplestores.jobs import Backend, EmbeddedBackend, RemoteBackend


@dataclass
class StationState:
    settings: Settings
    store: DataStore
    registry: TrainRegistry
    chain: ProvenanceChain
    results: ResultArchive
    metrics: Metrics
    identities: IdentityChecker
    #: Default policy for the FDP (graphs to describe) when no train is registered.
    policy: StationPolicySpec | None = None
    rate_limits: RateLimiter = field(default_factory=RateLimiter)

    async def start(self) -> None:
        await self.store.start()
        self.metrics.store_up.labels(self.metrics.station).set(1)
        # Result metrics exist from the first scrape (dashboards show 0, not "No data"),
        # and the held gauge reflects results kept across a restart.
        results = result_metrics(self.metrics)
        results.uploads.labels(self.metrics.station)
        results.set_held(len(self.results.held()))

    async def close(self) -> None:
        self.registry.flush()
        await self.store.close()
        await self.identities.close()


def load_policy(path: Path | None) -> StationPolicySpec | None:
    """A StationPolicy manifest (or a bare spec) from YAML; None when no file is configured."""
    if path is None:
        return None
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec = document.get("spec", document) if isinstance(document, dict) else document
    return StationPolicySpec.model_validate(spec)


def backend_from(settings: Settings) -> Backend:
    if settings.sparql_endpoint:
        return RemoteBackend(
            settings.sparql_endpoint, settings.sparql_user, settings.read_sparql_password()
        )
    if settings.store is None:
        raise ValueError("set PHT_API_STORE (an Oxigraph directory) or PHT_API_SPARQL_ENDPOINT")
    return EmbeddedBackend(str(settings.store))


def identities_from(settings: Settings) -> IdentityChecker:
    """The local identity file (station in a box) or Kubernetes reviews, remembered briefly."""
    if settings.identity_mode == "local":
        if settings.local_identities_file is None:
            raise ValueError("PHT_API_IDENTITY_MODE=local needs PHT_API_LOCAL_IDENTITIES_FILE")
        return LocalIdentities.from_file(settings.local_identities_file)
    return CachedIdentities(KubernetesIdentities(settings), settings.identity_cache_seconds)


def build_state(settings: Settings) -> StationState:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    metrics = Metrics(settings.station_name)
    return StationState(
        settings=settings,
        store=DataStore(backend_from(settings), settings.query_workers),
        registry=TrainRegistry(settings.registry_path, settings.progress_tick_seconds),
        chain=ProvenanceChain.open(settings.audit_store_dir, settings.chain_head_path),
        results=ResultArchive.open(settings),
        metrics=metrics,
        identities=identities_from(settings),
        policy=load_policy(settings.policy_file),
    )
