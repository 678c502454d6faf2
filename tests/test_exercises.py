"""The exercises, checked both ways: blank, each one's tests fail; filled in, in lesson order, they pass."""
import importlib.util
import subprocess
import sys

import pytest

from tinyllm.cli import main
from tinyllm.exercises import CATALOGUE, find_exercises, init, project_root, run_tests, status


def test_every_marked_region_is_catalogued_and_there_are_at_least_20():
    exercises = find_exercises()
    assert [e.id for e in exercises] == sorted(CATALOGUE, key=lambda i: tuple(map(int, i.split("."))))
    assert len(exercises) >= 20
    assert all(status(e, project_root()) == "written" for e in exercises)


def fill_in(exercise, copy, reference_body):
    """Paste the reference solution back into the learner's copy, as a learner would."""
    path = copy / exercise.file
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[exercise.begin + 1:exercise.end] = reference_body
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_blank_copy_fails_each_exercise_until_it_is_filled_in(tmp_path):
    copy = tmp_path / "learner"
    exercises = init(copy)
    where = subprocess.run([sys.executable, "-c", "import tinyllm; print(tinyllm.__file__)"], cwd=copy,
                           capture_output=True, text=True).stdout
    assert where.startswith(str(copy)), where  # the copy's package is the one its tests import
    reference = {e.id: e.body(project_root()) for e in find_exercises()}
    assert all(status(e, copy) == "todo" for e in find_exercises(copy))
    for e in exercises:  # in lesson order: a learner's package works up to the exercise at hand
        blank = run_tests(e, copy)
        assert blank.returncode == 1 and "NotImplementedError" in blank.stdout, (e.id, blank.stdout[-2000:])
        fill_in(next(c for c in find_exercises(copy) if c.id == e.id), copy, reference[e.id])
        solved = run_tests(e, copy)
        assert solved.returncode == 0, (e.id, solved.stdout[-2000:])
    assert all(status(e, copy) == "written" for e in find_exercises(copy))


def test_the_blank_copy_fails_exactly_on_the_exercise_tests(tmp_path):
    copy = tmp_path / "learner"
    init(copy)
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--tb=no", "-rf"],
                            cwd=copy, capture_output=True, text=True)
    failed = {line[len("FAILED "):].split(" - ")[0] for line in result.stdout.splitlines()
              if line.startswith("FAILED ")}
    expected = {test for tests, _ in CATALOGUE.values() for test in tests}
    if importlib.util.find_spec("torch") is None:   # the comparison with PyTorch skips without it
        expected.remove("tests/test_optim.py::test_adamw_matches_pytorch")
    assert result.returncode == 1 and failed == expected, (failed ^ expected, result.stdout[-3000:])
    assert "waits for Exercise" in subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "tests/test_model.py"],
        cwd=copy, capture_output=True, text=True).stdout  # the others say what they wait for


def test_init_refuses_a_non_empty_directory(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["exercises", "init", str(tmp_path)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err


def test_list_hint_and_check_commands(capsys):
    assert main(["exercises", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == len(CATALOGUE) and "2.3" in listing[5] and "written" in listing[5]
    assert main(["exercises", "hint", "9.2"]) == 0
    assert "max_norm" in capsys.readouterr().out
    assert main(["exercises", "check", "9.3"]) == 0
    assert "exercise 9.3 passed" in capsys.readouterr().out
    assert main(["exercises", "hint", "99.1"]) == 2
    assert "no exercise '99.1'" in capsys.readouterr().err


def test_commands_act_on_the_copy_they_run_in(tmp_path, monkeypatch, capsys):
    # A learner inside their copy whose 'tinyllm' still imports the reference (no 'pip install -e .'
    # there yet): list and check must look at the copy, not report its blank exercises as done.
    copy = tmp_path / "learner"
    init(copy)
    monkeypatch.chdir(copy / "lessons")   # anywhere inside the copy
    assert main(["exercises", "list"]) == 0
    out, err = capsys.readouterr()
    assert {line.split()[1] for line in out.splitlines()} == {"todo"}
    assert f"'import tinyllm' finds {project_root()}" in err
    assert main(["exercises", "check", "1.3"]) == 1
    assert "exercise 1.3 not yet" in capsys.readouterr().out


def test_check_says_why_the_tests_could_not_run(monkeypatch, capsys):
    from tinyllm import exercises
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, package=None: None if name == "pytest" else find_spec(name, package))
    assert main(["exercises", "check", "1.1"]) == 2
    assert "pytest is not installed: pip install -e '.[test]'" in capsys.readouterr().err
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    broken_conftest = subprocess.CompletedProcess([], 4, stdout="", stderr="ImportError while loading conftest")
    monkeypatch.setattr(exercises, "run_tests", lambda e, root: broken_conftest)
    assert main(["exercises", "check", "1.1"]) == 1
    assert "exercise 1.1: its tests could not run\n  ImportError while loading conftest" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", ["2.3"])
def test_check_reports_what_fails_in_a_blank_copy(tmp_path, exercise_id):
    copy = tmp_path / "learner"
    init(copy)
    result = subprocess.run([sys.executable, "-m", "tinyllm.cli", "exercises", "check", exercise_id], cwd=copy,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert f"exercise {exercise_id} not yet: 4 test(s) fail" in result.stdout
