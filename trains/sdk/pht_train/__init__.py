"""Train SDK: what an algorithm image needs to talk to a PHT station (standard library only).

Typical use::

    from pht_train import ResultManifest, Stage, count, group, run

    def summarise(train):
        rows = train.query("characteristics").rows
        ...
        train.progress(80, Stage.UPLOADING)
        train.upload(manifest)

    run(summarise)
"""

from pht_train.clients import RetryPolicy, StationClient
from pht_train.constants import Stage
from pht_train.environments import TrainEnvironment
from pht_train.errors import (
    ConfigurationError,
    ManifestError,
    ParameterError,
    QueryNotFound,
    ResultFormatError,
    StationError,
    TrainError,
)
from pht_train.failures import FAILURE_EXIT_CODE, FAILURE_PREFIX, fail
from pht_train.manifests import (
    Cell,
    Column,
    ModelFile,
    ResultManifest,
    category_label,
    count,
    group,
    statistic,
)
from pht_train.resultsets import ResultSet, Row
from pht_train.sessions import TrainSession, UploadReceipt, connect, run
from pht_train.terms import Value

__all__ = [
    "FAILURE_EXIT_CODE",
    "FAILURE_PREFIX",
    "Cell",
    "Column",
    "ConfigurationError",
    "ManifestError",
    "ModelFile",
    "ParameterError",
    "QueryNotFound",
    "ResultFormatError",
    "ResultManifest",
    "ResultSet",
    "RetryPolicy",
    "Row",
    "Stage",
    "StationClient",
    "StationError",
    "TrainEnvironment",
    "TrainError",
    "TrainSession",
    "UploadReceipt",
    "Value",
    "category_label",
    "connect",
    "count",
    "fail",
    "group",
    "run",
    "statistic",
]
