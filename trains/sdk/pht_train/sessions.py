"""A connected run: identity and parameters, named queries, progress and upload in one object."""

import json
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar, overload

from pht_train.clients import RetryPolicy, StationClient
from pht_train.constants import (
    FORM_MEDIA_TYPE,
    PROGRESS_PATH,
    QUERY_NAME_PARAMETER,
    RESULT_PATH,
    SPARQL_PATH,
    SPARQL_QUERY_MEDIA_TYPE,
    SPARQL_RESULTS_MEDIA_TYPE,
    Stage,
)
from pht_train.environments import REQUIRED, TrainEnvironment, get_parameter
from pht_train.errors import StationError, TrainError
from pht_train.failures import fail
from pht_train.manifests import ResultManifest
from pht_train.queries import load_queries, load_query
from pht_train.resultsets import ResultSet, parse_results

T = TypeVar("T")


@dataclass(frozen=True)
class UploadReceipt:
    """The station's acknowledgement of an upload (the result is not released yet)."""

    uid: str
    attempt: int
    digest: str
    size_bytes: int


class TrainSession:
    """What an algorithm uses to talk to its station."""

    def __init__(self, environment: TrainEnvironment, client: StationClient) -> None:
        self.environment = environment
        self.client = client

    @property
    def parameters(self) -> Mapping[str, Any]:
        return self.environment.parameters

    @overload
    def parameter(self, name: str, kind: type[T]) -> T: ...
    @overload
    def parameter(self, name: str, kind: type[T], default: T) -> T: ...
    def parameter(self, name: str, kind: type[T], default: T = REQUIRED) -> T:
        """One parameter of the Train, type-checked (``ParameterError`` when wrong or missing)."""
        return get_parameter(self.environment.parameters, name, kind, default)

    @property
    def scratch_dir(self) -> Path | None:
        """Writable scratch space (the root filesystem of a run is read-only)."""
        return self.environment.scratch_dir

    def query_names(self) -> list[str]:
        return sorted(load_queries(self.environment.queries_dir))

    def query(self, name: str) -> ResultSet:
        """Run the Train's named query ``name`` through the station's gateway.

        The train sends only the name: the station runs the text the steward approved for it.
        The mounted file is read first so an undeclared name fails here, with the known names.
        """
        load_query(self.environment.queries_dir, name)
        response = self.client.request(
            "POST",
            SPARQL_PATH,
            body=urllib.parse.urlencode({QUERY_NAME_PARAMETER: name}).encode("ascii"),
            content_type=FORM_MEDIA_TYPE,
            accept=SPARQL_RESULTS_MEDIA_TYPE,
        )
        return parse_results(response.json())

    def run_sparql(self, sparql: str) -> ResultSet:
        """Run a query text (open-mode stations; approved-queries stations want :meth:`query`)."""
        response = self.client.request(
            "POST",
            SPARQL_PATH,
            body=sparql.encode("utf-8"),
            content_type=SPARQL_QUERY_MEDIA_TYPE,
            accept=SPARQL_RESULTS_MEDIA_TYPE,
        )
        return parse_results(response.json())

    def progress(self, percent: int, stage: Stage | str) -> None:
        """Tell the station how far the run is: a percentage and an enumerated stage."""
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError("progress is a whole percentage from 0 to 100")
        body = {"percent": percent, "stage": Stage(stage).value}
        self.client.request(
            "POST", PROGRESS_PATH, body=json.dumps(body).encode(), content_type="application/json"
        )

    def upload(self, manifest: ResultManifest) -> UploadReceipt:
        """Send the result manifest; the station's disclosure gate decides what leaves."""
        response = self.client.request(
            "PUT", RESULT_PATH, body=manifest.to_json(), content_type="application/json"
        )
        answer = response.json()
        try:
            return UploadReceipt(
                uid=str(answer["uid"]),
                attempt=int(answer["attempt"]),
                digest=str(answer["digest"]),
                size_bytes=int(answer.get("sizeBytes", answer.get("size_bytes"))),
            )
        except (KeyError, TypeError, ValueError):
            raise StationError(
                "InvalidResponse", "the station's upload receipt is malformed", response.status
            ) from None


def connect(
    environ: Mapping[str, str] | None = None, retry: RetryPolicy | None = None
) -> TrainSession:
    """A session for this run, from the environment the station set."""
    environment = TrainEnvironment.from_environ(environ)
    return TrainSession(environment, StationClient(environment.api_url, environment.token, retry))


def run(
    algorithm: Callable[[TrainSession], None],
    environ: Mapping[str, str] | None = None,
    retry: RetryPolicy | None = None,
) -> NoReturn:
    """Run ``algorithm`` as a train's entrypoint and exit with its outcome.

    Reports ``Starting`` and, when the algorithm returns, ``Done``. Any SDK error ends the run
    with its CamelCase reason; any other exception with ``AlgorithmError`` and the exception's
    type name on stderr — never its message or traceback, which may quote patient data.
    """
    try:
        session = connect(environ, retry)
        session.progress(0, Stage.STARTING)
        algorithm(session)
        session.progress(100, Stage.DONE)
    except TrainError as error:
        # SDK messages name variables, columns and reasons, never values.
        print(f"pht-train: {type(error).__name__}: {error}", file=sys.stderr)
        fail(error.reason)
    except Exception as error:  # the reason must be a word, not a traceback
        print(f"pht-train: unhandled {type(error).__name__}", file=sys.stderr)
        fail("AlgorithmError")
    raise SystemExit(0)
