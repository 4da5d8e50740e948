"""Every module imports (a module that cannot be imported must never ship), and the package is light."""

import importlib
import os
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


@pytest.mark.parametrize("preset, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_command_makes_openmp_threads_wait_passively_unless_told(preset, expected):
    """Set before torch loads (the CLI imports no torch), so OpenMP reads it; a user's value wins."""
    code = (
        "import os, sys\nfrom alignlab.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env).stdout.split()
    assert out[-2:] == [expected, "False"]
