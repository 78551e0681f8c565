"""Two checkouts' pipelines compared by instructions executed, not by time.

    .venv/bin/python bench/instructions.py ../other-checkout
    .venv/bin/python bench/instructions.py ../other-checkout --db DIR/stored-100000.db

Why: the machines these benchmarks run on are shared, and their speed drifts by 15 % within
minutes (docs/benchmarks.md, "Session 10"): two throughput runs, or even alternating pairs of
bench/sample_on_history.py, cannot separate a change of a few percent. valgrind's callgrind
counts the instructions a process executes, the same for the same code and input whatever
else the machine is doing. This runs each checkout's bench/pipeline_stages.py (`--runs 1`,
and `--db` if given: the 496 ECB+ reports through `process_entry`, on an empty database or a
copy of a kept history) under callgrind, both at once, and prints each total and their ratio.
The totals include the interpreter's start, the imports and copying the history: the same
for both, so a ratio understates a change to the per-article work a little.

Takes about 4 minutes from an empty database and 10 on a 100 000-article history (callgrind
runs the code about 50 times slower). Needs valgrind (`apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
_TOTAL = re.compile(r"Collected\s*:\s*(\d+)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the checkout to compare this one with")
    parser.add_argument("--db", type=Path, help="a kept history (bench/throughput.py --keep) to start from")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    checkouts = {"this": HERE, "other": args.other.resolve()}
    for name, checkout in checkouts.items():
        if not (checkout / "bench" / "pipeline_stages.py").is_file():
            parser.error(f"{checkout} has no bench/pipeline_stages.py: not a newsmon checkout ({name})")
    stages = ["--runs", "1", *(["--db", str(args.db.resolve())] if args.db else [])]
    with tempfile.TemporaryDirectory(prefix="newsmon-instructions-") as scratch:
        running = {}
        for name, checkout in checkouts.items():
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/{name}.out",
                       sys.executable, str(checkout / "bench" / "pipeline_stages.py"), *stages]
            running[name] = subprocess.Popen(command, cwd=checkout, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, text=True)
        totals = {}
        for name, process in running.items():
            _, log = process.communicate()
            found = _TOTAL.search(log)
            if process.returncode != 0 or found is None:
                print(log[-2000:], file=sys.stderr)
                raise SystemExit(f"{checkouts[name]}: pipeline_stages.py under callgrind failed "
                                 f"(exit {process.returncode})")
            totals[name] = int(found.group(1))
    where = f"on a copy of {args.db}" if args.db else "from an empty database"
    print(f"pipeline_stages.py --runs 1 {where}, instructions (callgrind):")
    for name, checkout in checkouts.items():
        print(f"  {checkout}: {totals[name] / 1e9:.2f} G")
    print(f"  this / other: {totals['this'] / totals['other']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
