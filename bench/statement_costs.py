"""What each SQL statement of the pipeline costs on a kept history: CPU ms an article, by statement.

    .venv/bin/python bench/throughput.py --keep DIR                    # once: DIR/stored-N.db
    .venv/bin/python bench/statement_costs.py DIR/stored-100000.db --warm 1000

Why: bench/pipeline_stages.py times stages, and a stage such as "candidate stories" mixes
Python and several statements; bench/history_pages.py counts the pages commits write, not the
time reads take. This runs bench/sample_on_history.py's sample (same options: `--warm N`,
`--store-batch N`, `--code DIR`) with every call of storage/driver.py's functions and of
SQLAlchemy's `Connection.execute` (called from storage/ or monitor/) wrapped by a CPU-time
counter (`time.process_time`), the rows of a SELECT fetched inside it: what a statement
costs the pipeline, SQLAlchemy's and the driver's Python included. Statements are named by
their first words. Commits are not statements here (bench/pipeline_stages.py times them).
The wrappers add a few microseconds a call; compare statements with each other, or two
checkouts on the same history (the sample's own line shows the overhead: articles a second
as sample_on_history.py gives them).
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    code = Path(argv[argv.index("--code") + 1] if "--code" in argv else Path(__file__).resolve().parent.parent)
    sys.path[:0] = [str(code.resolve()), str(code.resolve() / "bench")]
    import sample_on_history
    from sqlalchemy.engine import Connection

    from storage import driver

    costs: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    labels: dict[int, str] = {}  # id of a statement (kept alive by the module that holds it) → label

    def timed(name: str, function, statement_at: int):
        def wrapper(*args, **kwargs):
            start = time.process_time()
            result = function(*args, **kwargs)
            if name == "Connection.execute":
                if not sys._getframe(1).f_globals.get("__name__", "").startswith(("storage.", "monitor.")):
                    return result  # the ORM's own statements (and this script's set-up): not timed
                if result.returns_rows:  # rows are read as they are fetched: fetched here, timed
                    result = _Fetched(result.all())
            elapsed = time.process_time() - start
            statement = args[statement_at]
            label = labels.get(id(statement))
            if label is None:  # str() of a Core statement compiles it: once, and not timed
                label = labels[id(statement)] = f"{name}: {' '.join(str(statement).split())[:90]}"
            cost = costs[label]
            cost[0] += 1
            cost[1] += elapsed
            return result
        return wrapper

    for name in ("query", "values", "execute", "executemany", "executemany_sql"):
        if hasattr(driver, name):
            setattr(driver, name, timed(name, getattr(driver, name), 1))
    Connection.execute = timed("Connection.execute", Connection.execute, 1)

    status = sample_on_history.main(argv)
    warm = int(argv[argv.index("--warm") + 1]) if "--warm" in argv else 0
    articles = warm + 496  # the warm-up and the sample (every ECB+ document once)
    total = sum(seconds for _, seconds in costs.values())
    print(f"\n{articles} articles: {total * 1000 / articles:.2f} ms CPU an article in statements")
    print("| statement | calls an article | ms CPU an article |\n| --- | ---: | ---: |")
    for statement, (calls, seconds) in sorted(costs.items(), key=lambda item: -item[1][1]):
        if seconds * 1000 / articles >= 0.005:
            print(f"| `{statement}` | {calls / articles:.2f} | {seconds * 1000 / articles:.3f} |")
    return status


class _Fetched:
    """The rows of a result, read at once, with what storage/ asks of a result."""

    def __init__(self, rows: list) -> None:
        self._rows = rows

    def __iter__(self):
        return iter(self._rows)

    def all(self) -> list:
        return self._rows

    def one(self):
        (row,) = self._rows
        return row

    def first(self):
        return self._rows[0] if self._rows else None

    def scalar_one(self):
        return self.one()[0]


if __name__ == "__main__":
    raise SystemExit(main())
