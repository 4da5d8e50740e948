"""`python -m alignlab.report RUN_DIR [--output report.html]` (what `alignlab report` runs)."""

from __future__ import annotations

import argparse
import sys

from alignlab.errors import AlignlabError
from alignlab.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alignlab.report", description=__doc__)
    parser.add_argument("run_dir", help="Run directory of `alignlab run` (its --run-dir).")
    parser.add_argument(
        "--output", "-o", default=None, help="HTML file to write (default RUN_DIR/report.html)."
    )
    args = parser.parse_args(argv)
    try:
        path = write_report(args.run_dir, args.output)
    except AlignlabError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
