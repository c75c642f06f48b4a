"""colobench env list|create|prune: the per-version Python environments scenarios run in."""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from harness.errors import ColobenchError
from harness.run import envs

NAME = "env"
HELP = "list, create or prune the Python environments (one per sglang version or package set)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "create", "prune"])
    p.add_argument("specs", nargs="*", help="create: an sglang version (0.5.12) or pip requirement specs")
    p.add_argument("--wheelhouse", metavar="DIR", help="install offline from these wheels")
    p.add_argument("--system-site", action="store_true", help="see the system's packages (a GPU host's torch)")
    p.add_argument("--no-inherit", action="store_true", help="do not see the current environment's packages")
    p.add_argument("--older-than-days", type=float, default=30.0, help="prune: unused for this long (default 30)")


def main(args: argparse.Namespace) -> int:
    if args.action == "list":
        rows = [
            [e.key, " ".join(e.specs), e.meta.get("create_s", ""), len(e.meta.get("resolved", []))]
            for e in envs.listing()
        ]
        print(tabulate(rows, headers=["key", "specs", "create s", "packages"]))
        return 0
    if args.action == "prune":
        removed = envs.prune(args.older_than_days)
        print(f"removed {len(removed)} environments")
        return 0
    if not args.specs:
        raise ColobenchError("env create: give an sglang version or requirement specs")
    specs = envs.version_specs(args.specs[0]) if len(args.specs) == 1 and args.specs[0][:1].isdigit() else args.specs
    env = envs.create(
        specs,
        Path(args.wheelhouse) if args.wheelhouse else None,
        inherit=not args.no_inherit,
        system_site=args.system_site,
    )
    print(f"{env.key} {env.python}")
    return 0
