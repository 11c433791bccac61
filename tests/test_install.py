"""What an install needs is declared: every imported package, the conda
environment of --use-conda, the Slurm plugin."""

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DECLARED = {canonicalize_name(Requirement(d).name) for d in PROJECT["dependencies"]}
EXTRAS = PROJECT["optional-dependencies"]
#: What a module of an optional feature may import: its extra's packages.
OPTIONAL = {canonicalize_name(Requirement(d).name) for d in EXTRAS["pysaliency"]}


def third_party_imports_of(path: Path) -> set[str]:
    """Top-level modules that one file imports, anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"saldissect", "__future__"}


def third_party_imports(folder: Path) -> set[str]:
    """Top-level modules that the code under ``folder`` imports, anywhere in a file."""
    return set().union(*(third_party_imports_of(path) for path in folder.rglob("*.py")))


def test_every_package_the_library_and_scripts_import_is_a_declared_dependency():
    distributions = packages_distributions()
    imports = third_party_imports(ROOT / "src") | third_party_imports(ROOT / "workflow/scripts")
    assert {"torch", "numba", "PIL", "cv2"} <= imports  # the scan sees the imports
    undeclared = {
        module: distributions.get(module, ["?"])
        for module in imports
        if not {canonicalize_name(d) for d in distributions.get(module, [])} & (DECLARED | OPTIONAL)
    }
    assert not undeclared, f"imported but not in pyproject.toml's dependencies: {undeclared}"


def test_only_the_import_of_other_layouts_imports_the_pysaliency_extra():
    """The extra is optional: everything else runs without it."""
    distributions = packages_distributions()
    users = {
        path.relative_to(ROOT / "src").as_posix()
        for path in (ROOT / "src").rglob("*.py")
        for module in third_party_imports_of(path)
        if {canonicalize_name(d) for d in distributions.get(module, [module])} & OPTIONAL
    }
    assert users == {"saldissect/data/imports.py"}


def test_the_conda_environment_lists_the_dependencies_and_no_path():
    """Snakemake copies the env file under .snakemake/conda/ before conda reads
    it, so a relative path in it (such as ``-e ..``) would point there: every pip
    entry must be a requirement, and they must be pyproject.toml's."""
    env = yaml.safe_load((ROOT / "envs/saldissect.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    for entry in pip:
        assert not entry.startswith(("-", ".", "/")), entry
        Requirement(entry)  # raises on anything but a requirement
    assert sorted(pip) == sorted(PROJECT["dependencies"])


def test_the_import_rules_conda_environment_adds_the_pysaliency_extra():
    env = yaml.safe_load((ROOT / "envs/import.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert sorted(pip) == sorted(PROJECT["dependencies"] + EXTRAS["pysaliency"])
    rule = (ROOT / "workflow/rules/data.smk").read_text().split("rule import_dataset:")[1]
    assert '"../../envs/import.yaml"' in rule.split("rule ")[0]


def test_the_slurm_plugin_is_an_extra_users_can_install():
    assert any(Requirement(r).name == "snakemake-executor-plugin-slurm" for r in EXTRAS["slurm"])
    assert "saldissect[slurm,pysaliency]" in EXTRAS["dev"]  # the tests use both


def test_ci_runs_the_linters_and_the_tests_with_pinned_versions():
    ci = (ROOT / ".ci/run").read_text()
    assert "make lint\nmake test" in ci
    makefile = (ROOT / "Makefile").read_text()
    assert "CONSTRAINTS ?= constraints.txt" in makefile and "-c $(CONSTRAINTS)" in makefile
    pins = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line]
    names = {canonicalize_name(line.split("==")[0]) for line in pins}
    assert DECLARED <= names, DECLARED - names
