"""Fail when a lock file no longer matches pyproject.toml (or .ci/tools.in).

Usage: python .ci/check_locks.py [LOCK ...]   (default: requirements.lock requirements-dev.lock)

Each lock names, in its header, the uv command that generated it. This reruns that command on
a copy of the lock: uv keeps the copy's pins wherever they still satisfy the inputs, so the
result differs only when an input changed (a dependency added, removed or re-pinned) and the
lock was not regenerated. Needs the package index, as the lock's own command does.
"""

from __future__ import annotations

import difflib
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ("requirements.lock", "requirements-dev.lock")
COMMAND_PREFIX = "#    uv pip compile "


def lock_command(lock: Path) -> list[str]:
    """The uv command recorded in the header of ``lock``, as argv."""
    for line in lock.read_text().splitlines()[:5]:
        if line.startswith(COMMAND_PREFIX):
            return shlex.split(line.removeprefix("#").strip())
    sys.exit(
        f"{lock.name}: no `uv pip compile` command in its header; regenerate it (docs/deploy.md)"
    )


def check(lock: Path, uv: Path) -> bool:
    """Regenerate ``lock`` into a temporary copy and report whether it came out the same."""
    argv = lock_command(lock)
    out = argv.index("-o")
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / lock.name
        shutil.copyfile(lock, fresh)
        run = [str(uv), *argv[1 : out + 1], str(fresh), *argv[out + 2 :]]
        run += ["--quiet", "--custom-compile-command", shlex.join(argv)]
        done = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{lock.name}: `{shlex.join(argv)}` failed:\n{done.stderr}", file=sys.stderr)
            return False
        new = fresh.read_text()
    old = lock.read_text()
    if new == old:
        print(f"{lock.name} matches its inputs")
        return True
    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), lock.name, f"{lock.name} (regenerated)", lineterm=""
    )
    changed = [line for line in diff if line[:1] in "+-" and "--hash=" not in line]
    print(
        f"{lock.name} is out of date with its inputs:\n"
        + "\n".join(changed[:40])
        + f"\nrun `{shlex.join(argv)}` and commit the result",
        file=sys.stderr,
    )
    return False


def main() -> int:
    """Check every lock named on the command line, or both by default."""
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        sys.exit(f"{uv} is missing: install the dev lock (`pip install -r requirements-dev.lock`)")
    names = sys.argv[1:] or list(LOCKS)
    results = [check(ROOT / name, uv) for name in names]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
