"""The package shows the workflow's architecture: sub-packages by stage family,
each importing only the families below it; one name per stage."""

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src/saldissect"
#: The families, lowest first: a module may import its own family and those before it.
LAYERS = ["core", "data", "models", "training", "analysis", "interaction", "report", "recovery"]
#: workflow/rules/<file>.smk -> the family whose stages its rules run
RULE_FILES = {
    "data": "data",
    "training": "training",
    "analysis": "analysis",
    "interaction": "interaction",
    "report": "report",
    "recovery": "recovery",
}


def modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): path
        for path in PACKAGE.rglob("*.py")
    }


def imported(path: Path) -> set[str]:
    """Every saldissect module ``path`` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.split(".")[0] == "saldissect"}


def family(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_lives_in_a_family_sub_package():
    loose = [m for m in modules() if m != "saldissect.__init__" and family(m) is None]
    assert not loose, f"modules outside the families {LAYERS}: {loose}"
    assert {family(m) for m in modules()} - {None} == set(LAYERS)


def test_the_readmes_library_table_lists_every_module_of_each_family():
    rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", (ROOT / "README.md").read_text(), re.M)
    listed = {name: set(re.findall(r"`(\w+)`", cells)) for name, cells in rows if name in LAYERS}
    assert set(listed) == set(LAYERS)
    for name in LAYERS:
        present = {
            m.split(".")[2] for m in modules() if family(m) == name and not m.endswith("__init__")
        }
        assert listed[name] == present, name


def test_each_family_imports_only_itself_and_the_families_below_it():
    upward = []
    for module, path in modules().items():
        own = family(module)
        if own is None:
            continue
        for name in imported(path):
            other = family(name)
            if other is not None and LAYERS.index(other) > LAYERS.index(own):
                upward.append(f"{module} imports {name}")
    assert not upward, "\n".join(upward)


def test_the_layering_check_sees_an_upward_import(tmp_path):
    """The check above can fail: core importing training is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from saldissect.training.train import build_model\n")
    assert "saldissect.training.train" in imported(bad)
    assert LAYERS.index(family("saldissect.training.train")) > LAYERS.index("core")


def test_report_and_recovery_code_never_imports_torch():
    """Table and figure jobs start in a second: nothing they import loads torch."""
    names = [m for m in modules() if family(m) in ("report", "recovery") and "__init__" not in m]
    code = "import sys\n" + "".join(f"import {m}\n" for m in names)
    code += "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout[:500]


def rules() -> list[tuple[str, str, str]]:
    """(rule file stem, rule name, script path or '') of every rule."""
    found = []
    for path in sorted((ROOT / "workflow/rules").glob("*.smk")):
        for block in re.split(r"(?m)^rule ", path.read_text())[1:]:
            name = block.split(":", 1)[0]
            script = re.search(r'script:\n\s+"\.\./scripts/([\w.]+)"', block)
            found.append((path.stem, name, script.group(1) if script else ""))
    return found


def test_rule_script_and_stage_function_share_one_name():
    checked = 0
    for stem, name, script in rules():
        if stem == "common":
            continue
        assert script == f"{name}.py", f"rule {name} runs scripts/{script}"
        text = (ROOT / "workflow/scripts" / script).read_text()
        stages = f"saldissect.{RULE_FILES[stem]}.stages"
        assert f"from {stages} import {name}\n" in text, f"scripts/{script}: not {stages}.{name}"
        assert f"run(snakemake, {name})" in text
        assert callable(getattr(importlib.import_module(stages), name))
        checked += 1
    assert checked >= 20
    scripts = {p.name for p in (ROOT / "workflow/scripts").glob("*.py")}
    assert scripts == {script for _, _, script in rules() if script}, "a script no rule runs"


@pytest.mark.parametrize("stem", sorted(RULE_FILES))
def test_every_rule_file_has_its_stage_module(stem):
    assert (ROOT / f"workflow/rules/{stem}.smk").is_file()
    assert (PACKAGE / RULE_FILES[stem] / "stages.py").is_file()
