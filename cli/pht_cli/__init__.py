"""``pht``: the one command line for researchers, stewards, DevOps and developers."""
