"""Names fixed by the API: group, version, finalizer, well-known object and label names."""

from typing import Final

API_GROUP: Final = "pht.health-ai.nl"
API_VERSION: Final = "v1alpha1"
GROUP_VERSION: Final = f"{API_GROUP}/{API_VERSION}"

TRAIN_KIND: Final = "Train"
TRAIN_PLURAL: Final = "trains"
POLICY_KIND: Final = "StationPolicy"
POLICY_PLURAL: Final = "stationpolicies"
APPROVAL_KIND: Final = "TrainApproval"
APPROVAL_PLURAL: Final = "trainapprovals"

#: The one StationPolicy a station namespace may hold (enforced by CEL on metadata.name).
STATION_POLICY_NAME: Final = "station-policy"

#: The operator's finalizer on Trains: carries the project's own name.
FINALIZER: Final = f"{API_GROUP}/run-cleanup"
#: Who created a Train (``request.userInfo.username``), set by the station's admission policy.
ANNOTATION_REQUESTED_BY: Final = f"{API_GROUP}/requested-by"

# Labels linking run-namespace objects back to their Train (no cross-namespace owners).
LABEL_TRAIN_NAME: Final = f"{API_GROUP}/train-name"
LABEL_TRAIN_NAMESPACE: Final = f"{API_GROUP}/train-namespace"
LABEL_TRAIN_UID: Final = f"{API_GROUP}/train-uid"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "pht-station-operator"

# Environment variables a run receives (the train SDK reads exactly these).
ENV_API_URL: Final = "PHT_STATION_API_URL"
ENV_TOKEN_FILE: Final = "PHT_TOKEN_FILE"
ENV_TRAIN_UID: Final = "PHT_TRAIN_UID"
ENV_TRAIN_NAME: Final = "PHT_TRAIN_NAME"
ENV_ATTEMPT: Final = "PHT_ATTEMPT"
ENV_PARAMETERS: Final = "PHT_PARAMETERS"
ENV_QUERIES_DIR: Final = "PHT_QUERIES_DIR"
ENV_SCRATCH: Final = "PHT_SCRATCH_DIR"
TOKEN_SECRET_KEY: Final = "token"
