"""Rebuild the parity report from the parity.json files under an artifacts folder.

    python -m edgeproof.verify artifacts      # writes parity_report.{json,md,html}, prints the Markdown
"""
from __future__ import annotations

import sys

from ._report import write_report

if __name__ == "__main__":
    paths = write_report(sys.argv[1] if len(sys.argv) > 1 else "artifacts")
    print(paths["md"].read_text())
    print(f"\nHTML report: {paths['html']}", file=sys.stderr)
