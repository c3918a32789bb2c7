#!/usr/bin/python3
"""Print the reference plan (tally.toml) as the .deb installs it in /etc/tally: every [paths]
entry made absolute under a state folder (default /var/lib/tally), nothing else changed.

Generated at packaging time so that the package never carries a second, hand-kept copy of the
plan. Fails (exit 1) when the result is not the same plan with only its paths moved, or when a
path of the reference plan is already absolute (the layout below would then be a guess).

    /usr/bin/python3 scripts/packaged-plan.py tally.toml [/var/lib/tally] > tally.toml.packaged
"""

import re
import sys
import tomllib

ENTRY = re.compile(r'^(\s*)([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)"([^"\\]*)"(.*)$')
TABLE = re.compile(r"^\s*\[")


def packaged(src: str, prefix: str) -> str:
    prefix = prefix.rstrip("/")
    out = []
    section = None
    for line in src.splitlines(keepends=True):
        if TABLE.match(line):
            section = line.split("#", 1)[0].strip()
        elif section == "[paths]":
            m = ENTRY.match(line)
            if m:
                indent, key, eq, value, rest = m.groups()
                if value.startswith("/"):
                    raise SystemExit(f"[paths] {key} = {value!r} is already absolute")
                line = f'{indent}{key}{eq}"{prefix}/{value}"{rest}'
                if not line.endswith("\n"):
                    line += "\n"
        out.append(line)
    header = (
        "# Installed by the tally package: the reference plan, with every [paths] entry under\n"
        f"# {prefix} (the tally account's own folder, owner-only). Generated from the\n"
        "# repository's tally.toml by scripts/packaged-plan.py. After editing this file:\n"
        "#   sudo systemctl restart tally\n"
        "#\n"
    )
    return header + "".join(out)


def main() -> None:
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    prefix = sys.argv[2] if len(sys.argv) == 3 else "/var/lib/tally"
    with open(sys.argv[1], encoding="utf-8") as f:
        src = f.read()
    result = packaged(src, prefix)
    before, after = tomllib.loads(src), tomllib.loads(result)
    paths_before, paths_after = before.pop("paths", {}), after.pop("paths", {})
    if before != after:
        raise SystemExit("the packaged plan differs from the reference beyond [paths]")
    if not paths_before or paths_after.keys() != paths_before.keys():
        raise SystemExit("the packaged plan's [paths] keys differ from the reference's")
    for key, value in paths_after.items():
        if value != f"{prefix.rstrip('/')}/{paths_before[key]}":
            raise SystemExit(f"[paths] {key}: {paths_before[key]!r} became {value!r}")
    sys.stdout.write(result)


if __name__ == "__main__":
    main()
