"""The built-in eval suites; importing this package registers them (`alignlab.evals.registry`), in the
order `--list` shows them."""

# isort: off
from alignlab.evals.suites import refusal, harmful, injection, hierarchy, sycophancy  # noqa: F401
from alignlab.evals.suites import honesty, winrate, diversity, gcg, lab  # noqa: F401
# isort: on
