"""The `gpuledger` console script.

`gpuledger collect` runs on every GPU host, so it loads only the agent's code (cli/collect.py):
no DuckDB, no advisor, no AWS SDK. Every other command goes to the full CLI in cli/main.py.
"""

from __future__ import annotations

import sys

GLOBAL_WITH_VALUE = ("--config", "--db", "--format")


def collect_argv(argv: list[str]) -> list[str] | None:
    """The arguments for the lean collector when the command is `collect`, else None."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in GLOBAL_WITH_VALUE:
            i += 2
        elif token.startswith(tuple(f"{o}=" for o in GLOBAL_WITH_VALUE)):
            i += 1
        elif token == "collect":
            return argv[:i] + argv[i + 1 :]
        else:
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        return _dispatch(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:  # `gpuledger costs | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _dispatch(args: list[str]) -> int:
    lean = collect_argv(args)
    if lean is not None:
        from cli.collect import main as collect_main

        return collect_main(lean)
    from cli.main import main as full_main

    return full_main(args)


if __name__ == "__main__":
    sys.exit(main())
