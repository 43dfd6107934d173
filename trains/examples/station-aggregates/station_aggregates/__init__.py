"""The train of a Train whose numbers the station computes itself (``spec.aggregates``)."""
