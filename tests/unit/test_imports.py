"""Every module imports (a module that cannot be imported must never ship), and the package is light."""

import importlib
import pkgutil
import subprocess
import sys

import pytest

import alignlab

MODULES = sorted(m.name for m in pkgutil.walk_packages(alignlab.__path__, "alignlab."))


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)


def test_cli_and_config_do_not_import_heavy_backends():
    code = (
        "import sys, alignlab.cli, alignlab.config, alignlab.pipeline\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'fastapi', 'datasets') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"importing the CLI pulled in: {out}"
