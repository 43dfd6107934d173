"""Station in a box: an emulated cluster, a simulated Job controller and the local demo.

Nothing here is used in production; it exists so the real operator and the real station API
can be exercised without a Kubernetes cluster (tests, ``make demo``, benchmarks).
"""
