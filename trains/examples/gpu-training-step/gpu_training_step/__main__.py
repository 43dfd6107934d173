"""Entrypoint: ``python -m gpu_training_step`` inside a station run."""

from gpu_training_step.train import train_step
from pht_train import run

if __name__ == "__main__":
    run(train_step)
