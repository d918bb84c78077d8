"""Child processes of the bench: ``python -m sequent.bench.child TASK ARGS_JSON``.

A child sets Django up against the workspace named by its environment, runs one task
and prints its figures as the last line of stdout (``BENCH-RESULT {json}``). The
parent side (``call``, ``spawn``, ``result_of``) never imports Django.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from typing import Any

from sequent.bench.workspace import Workspace

MARK = "BENCH-RESULT "

# Task name -> "module:function"; each function takes the JSON arguments as keywords.
TASKS = {
    "setup": "sequent.bench.data:setup",
    "import": "sequent.bench.importing:measure",
    "worker": "sequent.bench.running:work",
    "deliver": "sequent.bench.delivering:measure",
    "track-count": "sequent.bench.tracking:count_events",
}


class ChildFailed(RuntimeError):
    """A child process exited without a result."""


def command(task: str, **args: Any) -> list[str]:
    """The argv of a child running *task*."""
    return [sys.executable, "-m", "sequent.bench.child", task, json.dumps(args)]


def spawn(workspace: Workspace, task: str, **args: Any) -> subprocess.Popen[str]:
    """Start a child (stdin and stdout are pipes, for tasks that talk to the parent)."""
    return subprocess.Popen(
        command(task, **args),
        env=workspace.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result_of(process: subprocess.Popen[str], task: str, timeout: float | None = None) -> dict[str, Any]:
    """Wait for a spawned child and return its result."""
    try:
        out, err = process.communicate(timeout=timeout)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return parse(task, process.returncode, out, err)


def parse(task: str, returncode: int, out: str, err: str) -> dict[str, Any]:
    """The result line of a child's stdout, or ChildFailed with the end of its stderr."""
    for line in reversed(out.splitlines()):
        if line.startswith(MARK):
            return dict(json.loads(line[len(MARK) :]))
    tail = "\n".join(err.strip().splitlines()[-25:])
    raise ChildFailed(f"bench task {task!r} failed (exit {returncode}):\n{tail}")


def call(workspace: Workspace, task: str, timeout: float | None = None, **args: Any) -> dict[str, Any]:
    """Run a child to its end and return its result."""
    return result_of(spawn(workspace, task, **args), task, timeout)


def report(result: dict[str, Any]) -> None:
    """Child side: hand the result to the parent."""
    sys.stdout.write(MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> None:
    """Child side: set Django up on the workspace and run the task."""
    task, raw = argv[0], argv[1] if len(argv) > 1 else "{}"
    if "DATABASE_URL" not in os.environ or "SEQUENT_VAR_DIR" not in os.environ:
        raise SystemExit("bench children run only inside a bench workspace")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequent.settings")
    import django

    django.setup()
    module_name, function_name = TASKS[task].split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    report(function(**json.loads(raw)))


if __name__ == "__main__":
    main(sys.argv[1:])
