"""Exercises cut from the reference code itself.

Solution regions in the package are fenced by two comments:

    # BEGIN EXERCISE <lesson>.<n>: <a one-line hint>
    ...the reference code...
    # END EXERCISE

``tinyllm exercises init DIR`` copies the project with every region replaced by
``raise NotImplementedError("Exercise 2.3: ...")``; the learner fills them in, in
lesson order (each one's tests need only the exercises before it), and
``tinyllm exercises check 2.3`` runs the tests that cover it. That command (init,
list, check, hint) is written at the end of this file.
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .exercise_catalogue import CATALOGUE

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN EXERCISE (?P<id>\d+\.\d+): (?P<title>.+)$")
END = "# END EXERCISE"
PROJECT_FILES = ("tinyllm", "tests", "lessons", "examples", "setup.cfg", "pyproject.toml", "README.md")


def lesson_of(exercise_id: str) -> int:
    """The lesson an exercise belongs to: exercise N.x is lesson N's."""
    return int(exercise_id.split(".")[0])


@dataclass
class Exercise:
    id: str
    title: str
    file: Path      # relative to the project root
    begin: int      # line index of the BEGIN comment
    end: int        # line index of the END comment
    indent: str

    @property
    def tests(self) -> list[str]:
        return CATALOGUE[self.id][0]

    @property
    def hint(self) -> str:
        return CATALOGUE[self.id][1]

    @property
    def placeholder(self) -> str:
        return f'{self.indent}raise NotImplementedError("Exercise {self.id}: {self.title}")'

    def body(self, root: Path) -> list[str]:
        return (root / self.file).read_text(encoding="utf-8").splitlines()[self.begin + 1:self.end]


def project_root() -> Path:
    """The project folder that holds the tinyllm package being run (and its tests/)."""
    return Path(__file__).resolve().parents[1]


def current_project() -> Path:
    """The project that list, check and hint act on: the tinyllm project holding the current
    directory (a learner's copy, even before 'pip install -e .' there), else ``project_root()``.

    Without this, ``tinyllm exercises check`` run inside a copy but installed from the
    reference would test the reference and report blank exercises as passed.
    """
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "tinyllm" / "exercises.py").is_file() and (folder / "tests").is_dir():
            return folder
    return project_root()


def find_exercises(root: Path | None = None) -> list[Exercise]:
    """Every marked region under ``root/tinyllm``, in lesson order (1.1, 1.2, ..., 10.1)."""
    root = root or project_root()
    found = []
    for path in sorted((root / "tinyllm").rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            m = BEGIN.match(line)
            if not m:
                continue
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == END), None)
            if end is None:
                raise ValueError(f"{path}:{i + 1}: exercise {m['id']} has no '{END}' line")
            if m["id"] not in CATALOGUE or any(e.id == m["id"] for e in found):
                raise ValueError(f"{path}:{i + 1}: exercise {m['id']} is twice in the code or not in CATALOGUE")
            found.append(Exercise(m["id"], m["title"], path.relative_to(root), i, end, m["indent"]))
    return sorted(found, key=lambda e: tuple(int(n) for n in e.id.split(".")))


def blank_out(root: Path, exercises: list[Exercise]) -> None:
    """Replace the body of each exercise under ``root`` by its NotImplementedError line."""
    for file in {e.file for e in exercises}:
        lines = (root / file).read_text(encoding="utf-8").splitlines()
        for e in sorted((e for e in exercises if e.file == file), key=lambda e: -e.begin):
            lines[e.begin + 1:e.end] = [e.placeholder]
        (root / file).write_text("\n".join(lines) + "\n", encoding="utf-8")


def init(dest: str | Path) -> list[Exercise]:
    """Write a learner's copy of the project to ``dest`` with every exercise blanked."""
    dest, root = Path(dest), project_root()
    if not (root / "tests").is_dir():
        raise ValueError(f"tinyllm at {root} has no tests/ beside it: install it from a source checkout "
                         "(git clone ..., then pip install -e .) to make exercises")
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} exists and is not empty: choose a new directory")
    exercises = find_exercises(root)
    # (test_exercises.py and test_course.py test this machinery and the course on the reference,
    # test_bench.py runs bench/, which the copy leaves out: none has a place in a learner's copy)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "figures", "test_exercises.py", "test_course.py", "test_bench.py")
    for name in PROJECT_FILES:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        elif source.is_file():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    blank_out(dest, exercises)
    return exercises


def status(exercise: Exercise, root: Path) -> str:
    """"todo" while the region holds only its placeholder, else "written"."""
    body = [line.strip() for line in exercise.body(root)]
    return "todo" if body == [exercise.placeholder.strip()] else "written"


def run_tests(exercise: Exercise, root: Path, quiet: bool = True) -> subprocess.CompletedProcess:
    """Run the exercise's tests with this Python in ``root``."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q" if quiet else "-v", *exercise.tests]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True)


def lookup(exercise_id: str, root: Path | None = None) -> Exercise:
    """The exercise with this id ("2.3"), or an error that says where to find the ids."""
    for e in find_exercises(root):
        if e.id == exercise_id:
            return e
    raise ValueError(f"no exercise {exercise_id!r}: 'tinyllm exercises list' shows them all")


# --- the command line: tinyllm exercises init | list | check | hint ---------------------
def add_exercise_commands(commands) -> None:
    """The ``tinyllm exercises`` subcommands: init, list, check, hint (``commands``: argparse's subparsers)."""
    ex = commands.add_parser("exercises", help="write the package yourself: blanked copies, hints, checks",
                             description="Exercises are regions of tinyllm's own code. 'init' writes a copy of "
                                         "the project with each blanked; solve them in lesson order and 'check' "
                                         "each one. list/check/hint act on the project you are in (run them inside "
                                         "your copy, after 'pip install -e .' there).")
    sub = ex.add_subparsers(dest="exercise_command", metavar="ACTION", required=True)
    init_parser = sub.add_parser("init", help="write a learner's copy of the project with every exercise blanked")
    init_parser.add_argument("dir", help="a new (or empty) directory")
    init_parser.set_defaults(run=_init_command)
    sub.add_parser("list", help="every exercise, its file and its status").set_defaults(run=_list_command)
    check_parser = sub.add_parser("check", help="run the tests of one exercise (or of all, in order)")
    check_parser.add_argument("id", nargs="?", help="e.g. 2.3; all exercises when left out")
    check_parser.set_defaults(run=_check_command)
    hint_parser = sub.add_parser("hint", help="a longer hint for one exercise")
    hint_parser.add_argument("id", help="an exercise, e.g. 2.3 ('tinyllm exercises list' shows them all)")
    hint_parser.set_defaults(run=_hint_command)


def _init_command(args: argparse.Namespace) -> int:
    exercises = init(args.dir)
    print(f"wrote {args.dir} with {len(exercises)} exercises blanked. Next:\n"
          f"  cd {args.dir} && pip install -e '.[test]' && tinyllm exercises list")
    return 0


def _command_root() -> Path:
    """``current_project()``, saying so when it is not where ``import tinyllm`` finds the package."""
    root = current_project()
    if root != project_root():
        print(f"(exercises of {root}; but 'import tinyllm' finds {project_root()}: run "
              f"'pip install -e .' in {root} so lessons and commands use your code)", file=sys.stderr)
    return root


def _list_command(args: argparse.Namespace) -> int:
    root = _command_root()
    for e in find_exercises(root):
        print(f"{e.id:>5}  {status(e, root):7}  {str(e.file) + ':' + str(e.begin + 2):32}  {e.title}")
    return 0


def _check_command(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("pytest") is None:
        raise ValueError("checking an exercise runs its tests, and pytest is not installed: "
                         "pip install -e '.[test]' in your copy")
    root = _command_root()  # its tests run in root, where they import root's tinyllm
    for e in [lookup(args.id, root)] if args.id else find_exercises(root):
        result = run_tests(e, root)
        if result.returncode == 0:
            print(f"exercise {e.id} passed ({e.title})")
            continue
        failed = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        if failed:
            print(f"exercise {e.id} not yet: {len(failed)} test(s) fail\n  " + "\n  ".join(failed))
        else:  # no test ran (a conftest that cannot be imported, pytest failing, ...): its last words say why
            print(f"exercise {e.id}: its tests could not run\n  " +
                  "\n  ".join((result.stdout + result.stderr).strip().splitlines()[-8:]))
        print(f"run: python -m pytest {' '.join(repr(t) for t in e.tests)}")
        return 1
    return 0


def _hint_command(args: argparse.Namespace) -> int:
    e = lookup(args.id, _command_root())
    print(f"Exercise {e.id}: {e.title}\n  in {e.file}\n\n{e.hint}")
    return 0
