"""Entrypoint: ``python -m station_aggregates`` inside a station run."""

from pht_train import run
from station_aggregates.train import declare_only

if __name__ == "__main__":
    run(declare_only)
