"""The image archive reader the tests use: the station in a box's (pht_sandbox.ociimages)."""

from pht_sandbox.ociimages import Image, layer, read, unpack

__all__ = ["Image", "layer", "read", "unpack"]
