"""Check a built wheel and sdist, and the wheel installed alone in a fresh venv (no extras).

    python -m build --outdir DIST
    python -m venv VENV && VENV/bin/python -m pip install DIST/*.whl
    VENV/bin/python scripts/check_wheel.py DIST

Run by .ci/run with the fresh venv's interpreter. Every check runs in a child process started
in an empty directory, so the checkout is never on ``sys.path``: what is imported is what the
wheel installed. Fails (exit 1) when:

- the wheel holds anything but ``llmcache/`` and its ``.dist-info``, or misses ``py.typed``;
  the sdist misses the LICENSE, README, CHANGELOG, pyproject or the package;
- ``import llmcache``, ``llmcache --version`` or ``python -m llmcache --version`` fail, or the
  version is not the wheel's;
- ``llmcache demo --url memory://`` neither works nor exits 3 with the ``[langchain]`` install
  line;
- asking for ``redis://`` or ``momento://`` does not name the ``[redis]`` / ``[momento]`` install
  line.

Gaps that need a library change are printed as ``note:`` lines and do not fail the run (see
tests/test_release.py, where each is an expected failure until fixed).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

CHECKS: list[str] = []
FAILURES: list[str] = []
NOTES: list[str] = []


def check(ok: bool, message: str) -> None:
    print(("ok:   " if ok else "FAIL: ") + message)
    CHECKS.append(message)
    if not ok:
        FAILURES.append(message)


def note(message: str) -> None:
    print("note: " + message)
    NOTES.append(message)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def check_archives(dist: Path) -> tuple[str, str]:
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    check(len(wheels) == 1 and len(sdists) == 1, f"one wheel and one sdist in {dist}")
    if not wheels or not sdists:
        raise SystemExit(1)
    wheel = wheels[0]
    match = re.match(r"(?P<name>[^-]+)-(?P<version>[^-]+)-", wheel.name)
    assert match, wheel.name
    name, version = match["name"], match["version"]
    info = f"{name}-{version}.dist-info/"
    names = zipfile.ZipFile(wheel).namelist()
    stray = [n for n in names if not n.startswith(("llmcache/", info))]
    check(not stray, f"{wheel.name} holds llmcache/ and {info} only (stray: {stray[:5]})")
    check("llmcache/py.typed" in names, "the wheel has llmcache/py.typed")
    check(f"{info}licenses/LICENSE" in names, "the wheel has the LICENSE")
    caches = [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    check(not caches, f"no bytecode in the wheel ({caches[:3]})")
    with tarfile.open(sdists[0]) as sdist:
        members = {m.split("/", 1)[1] for m in sdist.getnames() if "/" in m}
    needed = {"LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "llmcache/__init__.py"}
    check(needed <= members, f"{sdists[0].name} has {', '.join(sorted(needed))}")
    print(f"      wheel: {len(names)} files, distribution {name} {version}")
    return name.replace("_", "-"), version


def check_installed(dist_name: str, version: str, cwd: Path) -> None:
    python = sys.executable
    script = str(Path(python).parent / "llmcache")

    result = run([python, "-c", "import llmcache, sys; print(llmcache.__version__)"], cwd)
    check(result.returncode == 0, f"import llmcache ({result.stderr.strip()[-300:]})")
    check(result.stdout.strip() == version, f"llmcache.__version__ == {version}")

    for args, shown in (
        ([script, "--version"], "llmcache --version"),
        ([python, "-m", "llmcache", "--version"], "python -m llmcache --version"),
    ):
        result = run(args, cwd)
        check(
            result.returncode == 0 and result.stdout.strip() == f"llmcache {version}",
            f"{shown} prints 'llmcache {version}' ({result.stdout.strip()!r})",
        )

    result = run([script, "demo", "--url", "memory://", "--latency", "0.05"], cwd)
    if result.returncode == 0:
        check("cache" in result.stdout.lower(), "llmcache demo --url memory:// works")
    else:
        hint = install_hint(result.stderr, "langchain")
        check(
            result.returncode == 3 and hint is not None,
            f"llmcache demo --url memory:// without langchain: exit 3 and the install line "
            f"(exit {result.returncode}: {result.stderr.strip()[-300:]})",
        )
        print("      the demo needs the [langchain] extra and says so")
        names_dist(hint, dist_name, "llmcache demo")

    for url, extra in (("redis://127.0.0.1:1/0", "redis"), ("momento://c", "momento")):
        code = (
            "import llmcache\n"
            "try:\n"
            f"    llmcache.from_url({url!r})\n"
            "except llmcache.LLMCacheError as exc:\n"
            "    print(exc)\n"
        )
        result = run([python, "-c", code], cwd)
        hint = install_hint(result.stdout, extra)
        check(
            result.returncode == 0 and hint is not None,
            f"from_url({url!r}) without the extra names pip install '...[{extra}]' "
            f"({(result.stdout + result.stderr).strip()[-300:]})",
        )
        names_dist(hint, dist_name, f"from_url({url!r})")

    for module, extra in (
        ("llmcache.adapters.langchain", "langchain"),
        ("llmcache.adapters.langgraph", "langgraph"),
        ("llmcache.testing", "testing"),
    ):
        result = run([python, "-c", f"import {module}"], cwd)
        if result.returncode == 0:
            note(f"import {module} works without the [{extra}] extra")
            continue
        last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
        check("Error" in last, f"import {module} without [{extra}] fails with an ImportError")
        if install_hint(result.stderr, extra) is None:
            note(f"import {module} without [{extra}] does not say the install line: {last}")


def install_hint(text: str, extra: str) -> str | None:
    match = re.search(r"pip install '([A-Za-z0-9_.-]+)\[" + extra + r"\]'", text)
    return match[1] if match else None


def names_dist(hint: str | None, dist_name: str, where: str) -> None:
    if hint is not None and hint != dist_name:
        note(f"{where}: the install line names {hint!r}, the distribution is {dist_name!r}")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    dist = Path(sys.argv[1])
    dist_name, version = check_archives(dist)
    with tempfile.TemporaryDirectory() as tmp:
        check_installed(dist_name, version, Path(tmp))
    if FAILURES:
        print(f"wheel checks FAILED ({len(FAILURES)} of {len(CHECKS)}; notes: {len(NOTES)})")
        return 1
    print(f"wheel checks ok ({len(CHECKS)} checks; notes: {len(NOTES)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
