"""Entrypoint: ``python -m federated_logreg`` inside a station run."""

from federated_logreg.train import step
from pht_train import run

if __name__ == "__main__":
    run(step)
