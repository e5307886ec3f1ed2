"""Runs every test suite, each in a pytest process of its own (eventlet and pytest-xdist do
not mix, and separate processes keep one suite's greenthreads out of the next), then prints
one closing line with the totals: ``N passed, N failed, N skipped``.

    python -m tests.run_all [suite ...]     (suites: unit web integration e2e browser; default all)

The web suite is the panel's own unit tests (Vitest, in web/: ``npm test``).

The browser suite drives the built panel (web/dist) in Chromium against the whole stack.
"""

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

SUITES = ("unit", "web", "integration", "e2e", "browser")
ROOT = Path(__file__).resolve().parent.parent


def counts(junit_path):
    tree = ElementTree.parse(junit_path)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in tree.iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
    return totals


def suite_command(suite, junit):
    """The command that runs ``suite`` and writes its JUnit report to ``junit``."""
    if suite == "web":
        return ["npx", "vitest", "run", "--reporter=default", "--reporter=junit", f"--outputFile.junit={junit}"]
    return [sys.executable, "-m", "pytest", f"tests/{suite}", f"--junitxml={junit}", "-p", "no:cacheprovider"]


def main(argv):
    suites = argv or list(SUITES)
    passed = failed = skipped = 0
    worst = 0
    with tempfile.TemporaryDirectory() as tmp:
        for suite in suites:
            junit = Path(tmp) / f"{suite}.xml"
            print(f"\n===== {suite} tests =====", flush=True)
            code = subprocess.call(suite_command(suite, junit), cwd=ROOT / "web" if suite == "web" else ROOT)
            if code not in (0, 5) or not junit.exists():  # 5: the suite collected no test
                worst = max(worst, code or 1)
            if junit.exists():
                total = counts(junit)
                bad = total["failures"] + total["errors"]
                failed += bad
                skipped += total["skipped"]
                passed += total["tests"] - bad - total["skipped"]
    print(f"\n===== all suites: {', '.join(suites)} =====")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    if passed == 0:
        print("no test ran", file=sys.stderr)
        return 1
    return 1 if failed or worst else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
