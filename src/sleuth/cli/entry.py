"""The ``sleuth`` console script. A one-shot command (grep, read, ls, search, df) is answered by the resident
process when one runs (``sleuth daemon start``, :mod:`sleuth.cli.resident`); everything else, and every call when
none runs, goes to the full CLI (:mod:`sleuth.cli.main`). Nothing but the standard library is imported first."""

from __future__ import annotations

import sys


def main() -> None:
    from sleuth.cli.resident import call

    code = call(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from sleuth.cli.main import main as cli_main

    cli_main()


if __name__ == "__main__":  # pragma: no cover
    main()
