"""A real Kubernetes control plane on 127.0.0.1 for tests and development (`pht dev cluster`)."""
