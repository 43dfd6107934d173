"""Result uploads, the disclosure decision on them, steward release and retention."""

from pht_station_api.results.records import ResultRecord, TrainContext
from pht_station_api.results.store import ResultStore

__all__ = ["ResultRecord", "ResultStore", "TrainContext"]
