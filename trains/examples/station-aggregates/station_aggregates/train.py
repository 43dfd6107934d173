"""Nothing to compute here: the station computes the Train's declared aggregates itself.

A Train whose result is only ``spec.aggregates`` (counts, summary statistics, Kaplan–Meier
tables, model rounds) still runs an image, because every Train does: this one. It reads no
data and uploads nothing, so the result holds only what the station computed from the approved
queries' answers, and the station releases it after its own rules whatever the image. Reviewing
this image is reviewing the few lines below.
"""

from pht_train import TrainSession


def declare_only(session: TrainSession) -> None:
    """Return at once: the SDK reports the run as started and done around this call."""
    del session
