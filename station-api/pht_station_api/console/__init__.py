"""The steward console."""
