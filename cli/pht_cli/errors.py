"""Errors a command reports as one line on stderr, and the exit codes they map to."""

from typing import Final

from pht_cli.output import printable

#: Bad input or configuration: an option, a file, a kubeconfig, an unreachable server.
EXIT_USAGE: Final = 2
#: Something went wrong that the CLI did not expect (the traceback is behind ``--debug``).
EXIT_UNEXPECTED: Final = 1


class CliError(Exception):
    """A problem the user can fix; printed as ``error: <message>``, exit code 2."""

    exit_code: int = EXIT_USAGE


def one_line(text: object) -> str:
    """Collapse a (possibly multi-line) message into one line, control characters escaped
    (a message may quote what a researcher wrote)."""
    return printable(" ".join(str(text).split()))
