"""Release readiness: the name, the version source, extras, licence, docs site, missing extras.

What needs a build (the wheel's file list, the wheel installed alone in a fresh venv) is checked
by scripts/check_wheel.py in .ci/run; the checks here are cheap ones.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import llmcache

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
DIST = PROJECT["name"]
EXTRAS = PROJECT["optional-dependencies"]
DOC_PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
INSTALL_LINE = re.compile(r"pip install ['\"]([A-Za-z0-9_.-]+)\[([a-z0-9_,-]+)\]['\"]")


def _load_script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ generated references


@pytest.mark.parametrize("page", ["configuration.md", "cli.md"])
def test_generated_reference_pages_match_the_code(page: str) -> None:
    gen = _load_script("gen_reference")
    committed = (ROOT / "docs" / "reference" / page).read_text()
    assert committed == gen.PAGES[page](), (
        f"docs/reference/{page} is stale: run python scripts/gen_reference.py and commit it"
    )


def test_configuration_reference_lists_every_setting_and_env_name() -> None:
    from llmcache.config import KeySettings, L1Settings, Settings

    page = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    for name in set(Settings.model_fields) - {"backend_env"}:
        assert f"`LLMCACHE_{name.upper()}`" in page
    for prefix, model in (("key", KeySettings), ("l1", L1Settings)):
        for name in model.model_fields:
            assert f"`{prefix}.{name}`" in page
            assert f"`LLMCACHE_{prefix.upper()}__{name.upper()}`" in page
    for env in ("LLMCACHE_REDIS_PASSWORD", "LLMCACHE_MOMENTO_API_KEY", "MOMENTO_API_KEY"):
        assert f"`{env}`" in page


def test_cli_reference_lists_every_command_and_option() -> None:
    import typer.main

    from llmcache.cli import app

    page = (ROOT / "docs" / "reference" / "cli.md").read_text()
    group: Any = typer.main.get_command(app)
    for name, command in group.commands.items():
        assert f"## llmcache {name}\n" in page
        for param in command.params:
            if param.param_type_name == "option":
                for opt in param.opts:
                    assert f"`{opt}`" in page, (name, opt)


# ------------------------------------------------------------------ name, version, metadata


def test_the_distribution_name_is_not_the_taken_one() -> None:
    # "llmcache" on the package index is an unrelated project; the import package stays ours.
    assert DIST == "llmcache-kit"
    assert PROJECT["scripts"] == {"llmcache": "llmcache.cli:main"}
    assert PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["llmcache"]


def test_one_version_source() -> None:
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "llmcache/__init__.py"
    init = (ROOT / "llmcache" / "__init__.py").read_text()
    assert re.findall(r"^__version__ = \"([^\"]+)\"$", init, re.M) == [llmcache.__version__]
    assert f"## [{llmcache.__version__}]" in (ROOT / "CHANGELOG.md").read_text()
    try:
        installed = importlib.metadata.version(DIST)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{DIST} is not installed (running from a bare checkout)")
    assert installed == llmcache.__version__, "reinstall: pip install -e '.[dev]'"


def test_license_changelog_classifiers_urls() -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in changelog
    classifiers = PROJECT["classifiers"]
    # PEP 639: the license expression replaces license classifiers (the index refuses both).
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert "Typing :: Typed" in classifiers
    assert f"Programming Language :: Python :: {PROJECT['requires-python'][2:]}" in classifiers
    assert {"Homepage", "Documentation", "Repository", "Changelog"} <= set(PROJECT["urls"])


def test_extras() -> None:
    expected = {
        "langchain", "langgraph", "redis", "momento", "bench", "encryption", "otel",
        "prometheus", "semantic", "all", "testing", "docs", "dev",
    }  # fmt: skip
    assert expected <= set(EXTRAS)
    requirement_names = {
        extra: {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower() for r in reqs}
        for extra, reqs in EXTRAS.items()
    }
    # Self-references use the distribution's own name (an old name would pull another package).
    for reqs in EXTRAS.values():
        for req in reqs:
            assert not req.startswith("llmcache["), req
    assert {"mkdocs-material", "mkdocstrings"} <= requirement_names["docs"]
    assert any(r.startswith(f"{DIST}[") and "testing" in r and "docs" in r for r in EXTRAS["dev"])


def test_the_testing_extra_covers_what_llmcache_testing_imports() -> None:
    imported: set[str] = set()
    for path in (ROOT / "llmcache" / "testing").glob("*.py"):
        imported |= set(re.findall(r"^(?:import|from) (\w+)", path.read_text(), re.M))
    third_party = {m for m in imported if m not in sys.stdlib_module_names} - {
        "llmcache",
        "__future__",
    }
    testing = {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0] for r in EXTRAS["testing"]}
    core = {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0] for r in PROJECT["dependencies"]}
    assert {m.replace("_", "-") for m in third_party} <= testing | core


def test_install_lines_in_docs_name_the_distribution_and_real_extras() -> None:
    seen = 0
    for page in DOC_PAGES:
        for name, extras in INSTALL_LINE.findall(page.read_text()):
            seen += 1
            where = f"{page.relative_to(ROOT)}: pip install '{name}[{extras}]'"
            assert name in (DIST, "."), where
            assert set(extras.split(",")) <= set(EXTRAS), where
    assert seen >= 5


def test_readme_keeps_the_two_checkout_commands() -> None:
    first_block = (ROOT / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in first_block.splitlines() if line.startswith("pip install")]
    assert commands[:2] == [
        "pip install -e '.[langchain]' && llmcache demo",
        "pip install -e '.[dev]' && python -m pytest",
    ]


# ------------------------------------------------------------------ docs site


def test_mkdocs_nav_covers_every_docs_page() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(node: Any) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [p for item in node for p in pages(item)]
        if isinstance(node, dict):
            return [p for value in node.values() for p in pages(value)]
        return []

    nav = pages(config["nav"])
    on_disk = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert len(nav) == len(set(nav))
    assert set(nav) == on_disk | {"index.md"}  # index.md: README.md, put there by the hook
    assert config["strict"] is True


def test_api_reference_covers_every_public_module() -> None:
    page = (ROOT / "docs" / "reference" / "api.md").read_text()
    documented = set(re.findall(r"^::: ([\w.]+)$", page, re.M))
    modules = set()
    for path in (ROOT / "llmcache").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts):
            continue
        modules.add(".".join(parts))
    # A package documented as a whole covers its submodules; these two only group others.
    covered = {m for m in modules if any(m == d or m.startswith(d + ".") for d in documented)}
    missing = modules - covered - {"llmcache.adapters", "llmcache.backends", "llmcache.cli"}
    assert not missing, f"add to docs/reference/api.md: {sorted(missing)}"


# ------------------------------------------------------------------ without the extras

BLOCKER = """
import sys
class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Missing())
"""


def _without(blocked: set[str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER.format(blocked=blocked) + code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("redis://127.0.0.1:1/0", "redis", "redis"),
        ("rediss://127.0.0.1:1/0", "redis", "redis"),
        ("redis+cluster://127.0.0.1:1", "redis", "redis"),
        ("momento://cache", "momento", "momento"),
    ],
)
def test_a_store_without_its_extra_says_the_install_line(url: str, module: str, extra: str) -> None:
    result = _without(
        {module},
        f"import llmcache\ntry:\n    llmcache.from_url({url!r})\n"
        "except llmcache.LLMCacheError as exc:\n    print(exc)\n",
    )
    assert result.returncode == 0, result.stderr
    assert re.search(rf"pip install '[\w.-]+\[{extra}\]'", result.stdout), result.stdout


def test_the_demo_without_langchain_says_the_install_line() -> None:
    result = _without(
        {"langchain_core", "langchain"},
        "import sys\nfrom llmcache.cli import main\n"
        "sys.argv = ['llmcache', 'demo', '--url', 'memory://', '--latency', '0']\nmain()\n",
    )
    assert result.returncode == 3, result.stderr
    assert re.search(r"pip install '[\w.-]+\[langchain\]'", result.stderr), result.stderr


def test_install_hints_in_the_library_name_the_distribution() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}: {name}[{extras}]"
        for path in (ROOT / "llmcache").rglob("*.py")
        for name, extras in INSTALL_LINE.findall(path.read_text())
        if name != DIST
    ]
    assert not wrong


@pytest.mark.parametrize(
    ("module", "blocked", "extra"),
    [
        ("llmcache.adapters.langchain", {"langchain_core", "langchain"}, "langchain"),
        ("llmcache.adapters.langgraph", {"langgraph"}, "langgraph"),
        ("llmcache.testing", {"pytest", "pytest_asyncio"}, "testing"),
    ],
)
def test_an_integration_without_its_extra_says_the_install_line(
    module: str, blocked: set[str], extra: str
) -> None:
    result = _without(blocked, f"import {module}\n")
    assert result.returncode != 0
    assert re.search(rf"pip install '[\w.-]+\[{extra}\]'", result.stderr), result.stderr


@pytest.mark.parametrize(
    ("module", "extra"),
    [("llmcache.adapters.langchain", "langchain"), ("llmcache.adapters.langgraph", "langgraph")],
)
def test_importing_an_adapter_without_its_extra_says_the_install_line(
    module: str, extra: str
) -> None:
    """Without langchain-core (as in a bare install), each adapter's import names its extra."""
    code = f"import sys; sys.modules['langchain_core'] = None; import {module}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert f"pip install 'llmcache-kit[{extra}]'" in result.stderr.strip().splitlines()[-1]
