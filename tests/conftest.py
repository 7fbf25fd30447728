"""Test set-up shared by the whole suite.

Keras 3 reads KERAS_BACKEND once, at import: the in-process suite runs on the torch backend,
and tests/test_backend_*.py re-runs tests/keras under jax and tensorflow in child processes.
tests/tf_keras runs only in its own child process, so TensorFlow's tf.keras never shares a
process with torch-backed Keras. Those Keras 3 child runs are lean: the cases marked ``sweep``
run on torch only (tests/backend_suites.py says what each backend still covers). Cases marked
``full`` run only in ``make test-full`` (PARAMSCOPE_FULL=1): the larger members of a family whose
every kind of block a smaller member already brings.
"""

import os
from collections import Counter

import pytest

from tests.backend_suites import CHILD_RUN_FILES, FULL, LEAN

pytest.register_assert_rewrite("tests.truth")

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One OpenMP thread per process: `make test` already runs a process per core, and torch's
# second thread mostly spins: tests/keras on torch took 1.8 times the CPU with two threads.
# Set before anything imports torch; the child runs inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# A reader exception that is not an InputError is a bug hostile bytes found: fail the test
# instead of turning it into the user's one-line "malformed FILE" error (see sources/detect.py).
os.environ.setdefault("PARAMSCOPE_STRICT", "1")

collect_ignore = [] if os.environ.get("PARAMSCOPE_TF_KERAS_SUITE") else ["tf_keras"]
# The Makefile runs the tests marked ``serial`` by naming their files (SERIAL_TESTS), so that
# the run does not import the whole suite; a serial test elsewhere would never run there.
SERIAL_FILES = {"tests/files/test_hostile_corpus.py"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sweep: a case only the main (torch-backend) run checks; lean child runs deselect it"
    )
    config.addinivalue_line("markers", "full: a case only `make test-full` (PARAMSCOPE_FULL=1) runs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the ``sweep`` cases in a lean child run, the ``full`` ones unless asked; put the
    child runs first.

    The child runs are the longest tests: started first, they end with the run instead of
    after it (pytest-xdist hands files out in this order, see ``pytest_xdist_make_scheduler``).
    Then files with many tests before files with few, as xdist itself orders them.
    """
    stray = sorted(
        {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("serial")} - SERIAL_FILES
    )
    if stray:
        raise pytest.UsageError(
            f"tests marked serial outside SERIAL_FILES (tests/conftest.py, Makefile): {stray}"
        )
    left_out = {"sweep"} if LEAN else set()
    if not FULL:
        left_out.add("full")
    deselected = [item for item in items if any(item.get_closest_marker(mark) for mark in left_out)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]
    per_file = Counter(item.path for item in items)
    items.sort(key=lambda item: (not CHILD_RUN_FILES.search(item.nodeid), -per_file[item.path]))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile`` in the collection's order, a file handed out only when one is needed.

    xdist's own loadfile sorts files by their number of tests, which put the one-test child
    runs, the longest of all, last; and it gives a worker more files while it still has two
    tests to run, so that two child runs could queue on one worker while the other ran dry.
    Here a worker gets its next file when it starts its last test (it must know the next test
    before it runs one, to tear fixtures down), never earlier.
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class InCollectionOrder(LoadFileScheduling):
        def _reschedule(self, node) -> None:
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
            elif self._pending_of(self.assigned_work[node]) <= 1:
                self._assign_work_unit(node)

    config.option.loadscopereorder = False
    return InCollectionOrder(config, log)
