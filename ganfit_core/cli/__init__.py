"""Command-line subcommands (see ``ganfit_core.__main__``)."""
