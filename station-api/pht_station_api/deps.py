"""FastAPI dependencies: the shared state and the three kinds of caller.

* :data:`RunDep` — a running train's bearer token, looked up by its sha256 only; unknown,
  revoked and expired tokens all answer 401 alike (no oracle for which one it was).
* :data:`OperatorDep` — the operator's own credential (a shared secret mounted from a Secret).
* :data:`HumanDep` — a steward or requester, authenticated by TokenReview (or the local identity
  file in the station in a box); :func:`authorize` then asks SubjectAccessReview whether the
  identity may perform a verb on the Train. Verbs: :data:`VERB_RELEASE` for stewards (view held
  results, release, block), :data:`VERB_GET` on the ``results`` subresource for requesters.
"""

import hmac
from typing import Annotated, Final

from fastapi import Depends, Request

from pht_contract.hashing import token_hash
from pht_station_api.errors import Forbidden, Unauthenticated
from pht_station_api.identities import Identity
from pht_station_api.registry import RegisteredTrain
from pht_station_api.state import StationState

VERB_RELEASE: Final = "release"
VERB_GET: Final = "get"
RESULTS_SUBRESOURCE: Final = "results"


def get_state(request: Request) -> StationState:
    state = request.app.state.station
    assert isinstance(state, StationState)
    return state


StateDep = Annotated[StationState, Depends(get_state)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("a bearer token is required")
    return token.strip()


def running_train(request: Request, state: StateDep) -> RegisteredTrain:
    train = state.registry.by_token_hash(token_hash(bearer_token(request)))
    if train is None or not train.active():
        raise Unauthenticated("the token is not valid for a running train")
    return train


RunDep = Annotated[RegisteredTrain, Depends(running_train)]


def operator(request: Request, state: StateDep) -> str:
    expected = state.settings.read_operator_token()
    token = bearer_token(request)
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthenticated("the operator credential is not valid")
    return "operator"


OperatorDep = Annotated[str, Depends(operator)]


async def human(request: Request, state: StateDep) -> Identity:
    return await state.identities.authenticate(bearer_token(request))


HumanDep = Annotated[Identity, Depends(human)]


async def authorize(
    state: StationState,
    identity: Identity,
    verb: str,
    namespace: str,
    train_name: str,
    subresource: str | None = None,
) -> None:
    """Raise 403 unless Kubernetes RBAC (or the local rules) allow ``verb`` on the Train."""
    if not await state.identities.allowed(identity, verb, namespace, train_name, subresource):
        raise Forbidden(f"{identity.username} may not {verb} train {namespace}/{train_name}")
