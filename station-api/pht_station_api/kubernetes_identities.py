"""TokenReview and SubjectAccessReview through lightkube, with the API's own credential.

The connection comes from ``KUBECONFIG`` when set (a kubeconfig file, e.g. outside a cluster),
otherwise from ``KUBERNETES_API_URL``, ``KUBERNETES_TOKEN_FILE`` and ``KUBERNETES_CA_FILE``,
whose defaults are the pod's own service account. The token file is read by lightkube and read
again when the API server answers 401, so a rotated service-account token is picked up.

A TokenReview is sent without ``audiences``: the API server then accepts exactly the tokens it
would accept itself (its default audience), such as the bearer token or OIDC token of a user's
kubeconfig. A token bound to another audience is refused by the API server.

The user's ``extra`` attributes from the TokenReview go into every SubjectAccessReview, as the
API server passes them to its own authorisers: a token limited by them (e.g. to some scopes)
is asked about with its limits, never as its user's full rights.

Any failure to ask (unreachable server, an error answer, no credential) raises
:class:`~pht_station_api.errors.IdentityUnavailable`: a failed review never guesses.
"""

from typing import Final

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.config.models import Cluster, User
from lightkube.core.exceptions import ConfigError
from lightkube.models.authentication_v1 import TokenReviewSpec
from lightkube.models.authorization_v1 import ResourceAttributes, SubjectAccessReviewSpec
from lightkube.resources.authentication_v1 import TokenReview
from lightkube.resources.authorization_v1 import SubjectAccessReview

from pht_contract.constants import API_GROUP, TRAIN_PLURAL
from pht_station_api.errors import IdentityUnavailable, Unauthenticated
from pht_station_api.identities import Extra, Identity
from pht_station_api.settings import Settings

REVIEW_TIMEOUT_SECONDS: Final = 5.0


def kube_config(settings: Settings) -> KubeConfig:
    """The kubeconfig file when one is configured, else the explicit (in-cluster) settings."""
    if settings.kubeconfig is not None:
        return KubeConfig.from_file(settings.kubeconfig)
    ca_file = settings.kubernetes_ca_file
    cluster = Cluster(
        server=settings.kubernetes_api_url,
        certificate_auth=str(ca_file) if ca_file is not None and ca_file.exists() else None,
    )
    return KubeConfig.from_one(
        cluster=cluster, user=User(token_file=str(settings.kubernetes_token_file))
    )


class KubernetesIdentities:
    """Asks the Kubernetes API who a bearer token belongs to and what that identity may do."""

    def __init__(
        self, settings: Settings, transport: httpx2.AsyncBaseTransport | None = None
    ) -> None:
        try:
            config = kube_config(settings)
        except (ConfigError, OSError) as error:
            raise ValueError(f"no usable Kubernetes configuration: {error}") from None
        self._client = AsyncClient(
            config,
            timeout=httpx2.Timeout(REVIEW_TIMEOUT_SECONDS),
            transport=transport,
            trust_env=False,
        )

    async def _create(self, review: TokenReview | SubjectAccessReview) -> object:
        try:
            return await self._client.create(review)
        except httpx2.HTTPStatusError as error:
            status = error.response.status_code
            raise IdentityUnavailable(f"the Kubernetes API answered {status}") from None
        except (httpx2.HTTPError, OSError):
            raise IdentityUnavailable("the Kubernetes API could not be reached") from None
        except ConfigError:
            raise IdentityUnavailable("the station API has no service-account token") from None

    async def authenticate(self, token: str) -> Identity:
        answer = await self._create(TokenReview(spec=TokenReviewSpec(token=token)))
        status = answer.status if isinstance(answer, TokenReview) else None
        if status is None or not status.authenticated or status.user is None:
            raise Unauthenticated("the bearer token is not valid in this cluster")
        user = status.user
        return Identity(
            user.username or "", tuple(user.groups or ()), user.uid or None, _extra(user.extra)
        )

    async def allowed(
        self, identity: Identity, verb: str, namespace: str, name: str, subresource: str | None
    ) -> bool:
        attributes = ResourceAttributes(
            group=API_GROUP,
            resource=TRAIN_PLURAL,
            verb=verb,
            namespace=namespace,
            name=name,
            subresource=subresource or None,
        )
        spec = SubjectAccessReviewSpec(
            user=identity.username,
            groups=list(identity.groups),
            uid=identity.uid or None,
            # What the token is limited to (scopes, the pod it is bound to) is asked about too.
            extra={key: list(values) for key, values in identity.extra} or None,
            resourceAttributes=attributes,
        )
        answer = await self._create(SubjectAccessReview(spec=spec))
        status = answer.status if isinstance(answer, SubjectAccessReview) else None
        return bool(status is not None and status.allowed)

    async def close(self) -> None:
        await self._client.close()


def _extra(extra: object) -> Extra:
    """The TokenReview's ``user.extra``, in the hashable form an :class:`Identity` holds."""
    if not isinstance(extra, dict):
        return ()
    return tuple(
        sorted(
            (str(key), tuple(str(value) for value in values or ())) for key, values in extra.items()
        )
    )
