"""Start-up time of the light commands: ``cnnlab --help``, ``cnnlab summary --help`` and ``cnnlab report``,
each a whole new process, against the same commands of another checkout (the baseline).

The baseline is any cnnlab source tree (``git worktree add /tmp/before <commit>``); its ``cnnlab`` package
is put first on ``PYTHONPATH``, so both sides run in this Python with the same installed packages. The two
sides alternate, command by command; the medians and their ratio are printed.

    python -m benchmarks.startup --baseline /tmp/before --logs lightning_logs [--repeats 5]
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, machine, median, parser, table

RUN_CLI = "import sys; from cnnlab.cli import main; sys.argv[0] = 'cnnlab'; main()"


def seconds(args: list[str], pythonpath: str | None, cwd: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUN_CLI, *args], env=env, cwd=cwd, capture_output=True)
    took = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"cnnlab {' '.join(args)} failed:\n{done.stderr.decode()[-2000:]}")
    return took


def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--baseline", required=True, help="a cnnlab source tree to compare with")
    p.add_argument("--logs", default=str(ROOT / "lightning_logs"), help="run folders for cnnlab report")
    p.set_defaults(repeats=5)
    args = p.parse_args()
    baseline = str(Path(args.baseline).resolve())
    with tempfile.TemporaryDirectory() as out:
        commands = {
            "cnnlab --help": ["--help"],
            "cnnlab summary --help": ["summary", "--help"],
            "cnnlab report": ["report", args.logs, "--output", f"{out}/lb.md", "--plot", f"{out}/lb.png"],
        }
        times = {(name, side): [] for name in commands for side in ("baseline", "this")}
        for _ in range(args.repeats):
            for name, argv in commands.items():
                times[name, "baseline"].append(seconds(argv, baseline, out))
                times[name, "this"].append(seconds(argv, None, out))
    rows = []
    for name in commands:
        before, after = median(times[name, "baseline"]), median(times[name, "this"])
        rows.append([name, f"{before:.3f}", f"{after:.3f}", f"{before / after:.1f}x"])
    print(f"medians of {args.repeats} processes each; {machine()}")
    print(table(["command", "baseline s", "this s", "ratio"], rows))


if __name__ == "__main__":
    main()
