"""One module per ``pht`` subcommand (see :mod:`pht_cli.main`)."""
