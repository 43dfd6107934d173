"""Train SDK: what an algorithm image needs to talk to a PHT station (standard library only)."""
