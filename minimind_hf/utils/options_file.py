"""``--config FILE`` for the commands that take their settings from a YAML file of options.

Those are ``minimind eval`` and ``python -m data_tools.preferences``, with the per-scale ``recipes/<scale>/eval.yaml``
and ``pairs.yaml``.
"""

from __future__ import annotations

import yaml


def expand_config(argv: list[str]) -> list[str]:
    """``argv`` with ``--config FILE`` replaced by the options the YAML file holds.

    One ``key: value`` per option (its long name, ``_`` or ``-``; a list gives several values, ``true`` a bare flag,
    ``false`` or null nothing). An option also given on the command line keeps the command line's value. The per-scale
    settings of ``make pairs`` and ``make eval`` (``recipes/<scale>/pairs.yaml``, ``eval.yaml``) are such files.
    """
    if "--config" not in argv:
        return list(argv)
    at = argv.index("--config")
    if at + 1 >= len(argv):
        raise SystemExit("--config needs a YAML file of options")
    path, rest = argv[at + 1], argv[:at] + argv[at + 2 :]
    try:
        with open(path, encoding="utf-8") as handle:
            options = yaml.safe_load(handle) or {}
    except OSError as err:
        raise SystemExit(f"--config {path}: {err.strerror}") from None
    if not isinstance(options, dict):
        raise SystemExit(f"{path}: expected a YAML mapping of option names to values")
    given = {arg.split("=", 1)[0] for arg in rest if arg.startswith("--")}
    expanded: list[str] = []
    for key, value in options.items():
        flag = "--" + str(key).replace("_", "-")
        if flag in given or value is None or value is False:
            continue
        values = value if isinstance(value, list) else [] if value is True else [value]
        expanded += [flag, *(str(v) for v in values)]
    return rest[:at] + expanded + rest[at:]
