"""The learner's path, walked: for every lesson N in order, a fresh learner's copy (``tinyllm
exercises init``) with exactly the exercises of lessons 1..N solved runs lesson N to its end
(fast mode).

The exercises are solved by pasting the reference's own bodies back, as test_exercises does.
The copy's package is the one the lesson imports (PYTHONPATH), and each lesson runs as
test_lessons runs it (``run_lesson``: as a notebook would).
"""
import re

from test_exercises import fill_in
from test_lessons import LESSONS, run_lesson
from tinyllm.exercises import find_exercises, init, lesson_of, project_root, status

HEADER = re.compile(r"once exercises 1\.1–(?P<last>\d+\.\d+) are solved \(this lesson "
                    r"(?:teaches (?P<first_own>\d+\.\d+)(?:–(?P<last_own>\d+\.\d+))?|adds none)\)")


def test_every_lesson_opens_by_saying_which_exercises_it_runs_on():
    ids = [e.id for e in find_exercises()]
    for lesson in LESSONS:
        n = int(lesson.name[:2])
        head = " ".join(line.lstrip("#").strip() for line in lesson.read_text(encoding="utf-8").splitlines()[:6])
        found = HEADER.search(head)
        assert found, f"{lesson.name} does not open with 'once exercises 1.1–N.M are solved (this lesson ...)'"
        assert found["last"] == [i for i in ids if lesson_of(i) <= n][-1], lesson.name
        own = [i for i in ids if lesson_of(i) == n]
        said = [found["first_own"], found["last_own"] or found["first_own"]] if found["first_own"] else []
        assert said == ([own[0], own[-1]] if own else []), lesson.name


def test_each_lesson_runs_in_a_copy_with_the_exercises_of_it_and_the_lessons_before_solved(tmp_path):
    reference = {e.id: e.body(project_root()) for e in find_exercises()}
    for lesson in LESSONS:
        n = int(lesson.name[:2])
        copy = tmp_path / f"learner-{n:02d}"
        init(copy)
        # Solve the exercises of lessons 1..n, one at a time (each paste moves the lines of those after it).
        while todo := [e for e in find_exercises(copy) if lesson_of(e.id) <= n and status(e, copy) == "todo"]:
            fill_in(todo[0], copy, reference[todo[0].id])
        solved = [e.id for e in find_exercises(copy) if status(e, copy) == "written"]
        assert solved == [i for i in reference if lesson_of(i) <= n]
        result = run_lesson(copy / "lessons" / lesson.name, tmp_path / "figures", timeout=600, PYTHONPATH=str(copy))
        assert result.returncode == 0, (f"{lesson.name} failed in a copy with exercises {solved[0]} to {solved[-1]} "
                                        f"solved and the later ones blank:\n{result.stderr[-3000:]}")


def test_a_lesson_run_too_early_names_the_exercises_it_needs(tmp_path):
    copy = tmp_path / "learner"
    init(copy)
    result = run_lesson(copy / "lessons" / LESSONS[0].name, tmp_path / "figures", PYTHONPATH=str(copy))
    assert "exercises 1.1, 1.2, 1.3 are still blank" in result.stdout, result.stdout[-2000:]
    assert "NotImplementedError: Exercise 1." in result.stderr


def test_lessons_readme_lists_every_exercise_with_its_lesson():
    readme = (LESSONS[0].parent / "README.md").read_text(encoding="utf-8")
    rows = [line.split("|")[1:-1] for line in readme.splitlines() if re.match(r"\| \d+\.\d+ \|", line)]
    table = {cells[0].strip(): (int(cells[1]), cells[2].strip()) for cells in rows}
    assert list(table) == [e.id for e in find_exercises()]
    assert all(lesson == lesson_of(i) for i, (lesson, _) in table.items())
    builds = sum(kind == "build" for _, kind in table.values())
    assert len(table) >= 36 and builds >= 8
    assert f"Of the {len(table)}, {builds} are forward passes or loops" in " ".join(readme.split())
