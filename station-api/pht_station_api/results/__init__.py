"""Result uploads, the disclosure decision on them, steward release and retention."""

from pht_station_api.results.archive import ResultArchive
from pht_station_api.results.records import ResultRecord, TrainContext

__all__ = ["ResultArchive", "ResultRecord", "TrainContext"]
