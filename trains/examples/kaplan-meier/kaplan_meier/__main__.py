"""Entrypoint: ``python -m kaplan_meier`` inside a station run."""

from kaplan_meier.train import estimate
from pht_train import run

if __name__ == "__main__":
    run(estimate)
