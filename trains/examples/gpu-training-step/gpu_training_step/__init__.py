"""One local training step of a small survival network (GPU when present), as a PHT train."""
