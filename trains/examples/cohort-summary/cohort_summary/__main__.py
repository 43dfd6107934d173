"""Entrypoint: ``python -m cohort_summary`` inside a station run."""

from cohort_summary.train import describe
from pht_train import run

if __name__ == "__main__":
    run(describe)
