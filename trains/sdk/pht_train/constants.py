"""Names the station fixes: environment variables, internal API paths, progress stages, bounds.

The SDK is standard library only, so it cannot import the station's contract package. These
values mirror ``pht_contract`` (``constants``, ``wire``, ``trains.ProgressStage``,
``manifests``, ``base.CAMEL_REASON``); a test in ``tests/trains`` compares them one by one so
they cannot drift apart.
"""

from enum import StrEnum
from typing import Final

# Environment a run receives (pht_contract.constants).
ENV_API_URL: Final = "PHT_STATION_API_URL"
ENV_TOKEN_FILE: Final = "PHT_TOKEN_FILE"
ENV_TRAIN_UID: Final = "PHT_TRAIN_UID"
ENV_TRAIN_NAME: Final = "PHT_TRAIN_NAME"
ENV_ATTEMPT: Final = "PHT_ATTEMPT"
ENV_PARAMETERS: Final = "PHT_PARAMETERS"
ENV_QUERIES_DIR: Final = "PHT_QUERIES_DIR"
ENV_SCRATCH: Final = "PHT_SCRATCH_DIR"

#: Suffix of the files in the queries directory: one ``<query-name>.rq`` per named query.
QUERY_SUFFIX: Final = ".rq"

# Internal listener paths a running train may call (pht_contract.wire).
SPARQL_PATH: Final = "/internal/v1/sparql"
PROGRESS_PATH: Final = "/internal/v1/progress"
RESULT_PATH: Final = "/internal/v1/result"

SPARQL_QUERY_MEDIA_TYPE: Final = "application/sparql-query"
FORM_MEDIA_TYPE: Final = "application/x-www-form-urlencoded"
#: Names one of the Train's approved queries; the station runs the text it stored for it.
QUERY_NAME_PARAMETER: Final = "query-name"
SPARQL_RESULTS_MEDIA_TYPE: Final = "application/sparql-results+json"


class Stage(StrEnum):
    """The enumerated progress stages: the only words a run may say about itself."""

    STARTING = "Starting"
    QUERYING = "Querying"
    PREPROCESSING = "Preprocessing"
    COMPUTING = "Computing"
    TRAINING = "Training"
    EVALUATING = "Evaluating"
    UPLOADING = "Uploading"
    DONE = "Done"


# Result manifest shape and bounds (pht_contract.manifests).
RESULT_SCHEMA_VERSION: Final = "pht.result/v1"
CATEGORY_LABEL: Final = r"^[A-Za-z0-9][A-Za-z0-9 _.,:/+()<>=-]{0,63}$"
IDENTIFIER: Final = r"^[a-z][a-z0-9_-]{0,62}$"
FILE_NAME: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
SHA256_HEX: Final = r"^[a-f0-9]{64}$"
COLUMN_ROLES: Final = ("Group", "Count", "Statistic")
#: The formats a station may accept; ``pickle`` exists in the contract only to be refused.
MODEL_FORMATS: Final = ("safetensors", "onnx", "npy", "json")
MAX_TABLES: Final = 32
MAX_COLUMNS: Final = 64
MAX_ROWS: Final = 100_000
MAX_STATISTICS: Final = 1024
MAX_MODELS: Final = 16
MAX_MODEL_BASE64_CHARS: Final = 512 * 1024 * 1024
MAX_MESSAGES: Final = 16
MAX_MESSAGE_CHARS: Final = 2048
PLOT_TITLE: Final = r"^[A-Za-z0-9][A-Za-z0-9 _.,:;/+()%=?!'-]{0,119}$"
MAX_PLOTS: Final = 4
MAX_PLOT_BYTES: Final = 8 * 1024 * 1024

#: Failure reasons are CamelCase words, like Train condition reasons (pht_contract.base).
CAMEL_REASON: Final = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
#: The operator records a run's reason in at most this many characters (RunCompletion.reason).
MAX_REASON_CHARS: Final = 64
