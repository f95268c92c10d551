"""The sandbox: outcomes, and hostile programs that must end as recorded failures.

Every hostile program runs with its limits set before its first line; after each one a
normal program must still pass in the same sandbox (the next sample is unaffected), and
the test checks the machine itself: no file written outside, no process left behind.
Timeouts here are limits on the hostile code, never assertions about speed.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tunecheck.sandbox import Isolation, Limits, Sandbox, probe_isolation

ROOT = Path(__file__).resolve().parents[2]
OK = "def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\n"


@pytest.fixture(scope="module")
def box():
    with Sandbox(Limits(timeout=2.0, memory_mb=512, file_size_mb=8), workers=2) as sandbox:
        yield sandbox


def _processes_with(token: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if token.encode() in fh.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _then_ok(box: Sandbox) -> None:
    after = box.run(OK)
    assert after.passed, after.reason()


def test_outcomes_are_recorded_never_raised(box: Sandbox) -> None:
    assert box.run(OK).passed
    failed = box.run("assert 1 + 1 == 3, 'arithmetic'")
    assert failed.status == "failed" and failed.detail == "AssertionError: arithmetic"
    err = box.run("def f():\n    return undefined_name\n\nf()\n")
    assert err.status == "error"
    assert err.detail == "NameError: name 'undefined_name' is not defined"
    syntax = box.run("def f(:\n")
    assert syntax.status == "error" and syntax.detail.startswith("SyntaxError")
    crashed = box.run("import ctypes\nctypes.string_at(0)\n")  # a segmentation fault
    assert crashed.status == "killed" and crashed.detail == "killed by SIGSEGV"
    printed = box.run("print('hello from the program')")
    assert printed.passed and "hello from the program" in printed.output


def test_results_keep_input_order_in_parallel(box: Sandbox) -> None:
    programs = [f"assert {i} % 3 != 0" for i in range(12)]
    results = box.run_many(programs)
    assert [r.passed for r in results] == [i % 3 != 0 for i in range(12)]


def test_sys_exit_before_the_asserts_is_not_a_pass(box: Sandbox) -> None:
    for early in ("import sys\nsys.exit(0)", "import os\nos._exit(0)", "raise SystemExit"):
        result = box.run(f"{early}\nassert False, 'never reached'\n")
        assert result.status == "exited", (early, result)
        assert not result.passed
    _then_ok(box)


@pytest.mark.slow
def test_infinite_loop_times_out(box: Sandbox) -> None:
    result = box.run("while True:\n    pass\n")
    assert result.status == "timeout" and not result.passed
    _then_ok(box)


def test_the_cpu_limit_ends_a_busy_program() -> None:
    # the wall-clock timeout is far away: only the CPU-seconds limit can stop it
    with Sandbox(Limits(timeout=60.0, cpu_seconds=1), workers=1) as sandbox:
        result = sandbox.run("while True:\n    pass\n")
        assert result.status == "cpu" and not result.passed
        assert result.detail.startswith("CPU limit of 1 s")
        assert sandbox.run(OK).passed


def test_the_process_limit_holds() -> None:
    token = f"nproc-{uuid.uuid4().hex}"
    program = (
        f"# {token}\nimport os, time\n"
        "children = 0\n"
        "for _ in range(200):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(600)\n"
        "        os._exit(0)\n"
        "    children += 1\n"
        "assert False, f'forked {children}'\n"
    )
    with Sandbox(Limits(timeout=30.0, max_processes=8), workers=1) as sandbox:
        result = sandbox.run(program)
        assert result.status == "failed", result.reason()
        children = int(result.detail.rsplit(" ", 1)[1])
        if sandbox.isolation.drop_uid:  # its own user id: the limit counts its processes only
            assert children < 8
        else:  # the limit counts the real user's processes too, plus 8
            assert children < 200
        assert sandbox.run(OK).passed
    assert _processes_with(token) == []  # every child died with the program


def test_workers_default_to_the_cores_and_share_the_programs() -> None:
    with Sandbox(Limits(timeout=10.0)) as sandbox:
        assert sandbox.workers == os.cpu_count()
    with Sandbox(Limits(timeout=10.0), workers=2) as sandbox:
        # two programs are in flight at once: each waits for the other before it runs
        # (run one after the other, the first would wait in vain and break the barrier)
        both = threading.Barrier(2, timeout=120)
        run_one = sandbox._run

        def together(program: str, slot: int):
            both.wait()
            return run_one(program, slot)

        sandbox._run = together  # type: ignore[method-assign]
        results = sandbox.run_many([OK, OK])
        assert all(r.passed for r in results) and not both.broken
        # each worker slot has its own fork server: both were used
        assert sorted(sandbox._servers) == [0, 1]


@pytest.mark.slow
def test_fork_bomb_is_contained_and_killed(box: Sandbox) -> None:
    token = f"forkbomb-{uuid.uuid4().hex}"
    program = (
        f"# {token}\nimport os\n"
        "while True:\n"
        "    try:\n        os.fork()\n"
        "    except OSError:\n        pass\n"
    )
    result = box.run(program)
    assert result.status in {"timeout", "killed", "cpu", "error"} and not result.passed
    _then_ok(box)
    if box.isolation.namespaces or box.isolation.drop_uid:
        assert not [p for p in _processes_with("_zygote.py") if _uid_of(p) in box._uids]


def _uid_of(pid: int) -> int:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return -1


def test_allocating_8_gib_is_a_memory_failure(box: Sandbox) -> None:
    result = box.run("block = bytearray(8 * 1024 ** 3)\nassert len(block) > 0\n")
    assert result.status == "memory" and not result.passed
    _then_ok(box)


def test_writing_a_1_gib_file_stops_at_the_file_size_limit(box: Sandbox) -> None:
    program = (
        "chunk = b'0' * (1 << 20)\n"
        "with open('big.bin', 'wb') as fh:\n"
        "    for _ in range(1024):\n"
        "        fh.write(chunk)\n"
    )
    result = box.run(program)
    assert result.status == "error" and "File too large" in result.detail
    _then_ok(box)


@pytest.mark.parametrize("where", ["home", "project"])
def test_writes_outside_its_folder_fail(box: Sandbox, where: str) -> None:
    folder = Path.home() if where == "home" else ROOT
    target = folder / f"tunecheck-sandbox-escape-{uuid.uuid4().hex}.txt"
    try:
        result = box.run(f"with open({str(target)!r}, 'w') as fh:\n    fh.write('escaped')\n")
        assert not target.exists(), f"the sandbox let a program write {target}"
    finally:
        target.unlink(missing_ok=True)
    assert result.status == "error" and not result.passed
    assert "Read-only file system" in result.detail or "Permission denied" in result.detail
    _then_ok(box)


def test_its_own_folder_is_writable_and_removed_afterwards(box: Sandbox) -> None:
    program = (
        "import os\n"
        "with open('notes.txt', 'w') as fh:\n    fh.write('mine')\n"
        "print(os.getcwd())\n"
        "assert open('notes.txt').read() == 'mine'\n"
    )
    result = box.run(program)
    assert result.passed, result.reason()
    folder = Path(result.output.strip())
    assert not (folder / "notes.txt").exists()
    assert not folder.exists()  # the whole temporary folder is gone


def test_a_secret_in_the_environment_does_not_reach_the_program(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNECHECK_TEST_API_KEY", "sk-fake-secret-123")
    program = (
        "import os\n"
        "leak = os.environ.get('TUNECHECK_TEST_API_KEY')\n"
        "print(sorted(os.environ))\n"
        "assert leak == 'sk-fake-secret-123', 'no secret here'\n"
    )
    result = box.run(program)
    assert result.status == "failed" and "sk-fake-secret" not in result.output
    # nothing of the caller's environment: only what the sandbox sets
    assert result.output.strip() == str(
        sorted(["HOME", "LANG", "PATH", "PYTHONDONTWRITEBYTECODE", "TMPDIR"])
    )
    _then_ok(box)


def test_no_tcp_connection_to_a_local_server(box: Sandbox) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    try:
        program = (
            "import socket\n"
            f"conn = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
            "conn.sendall(b'exfiltrated')\n"
        )
        result = box.run(program)
        server.setblocking(False)
        # a connection that got through would be waiting in the backlog
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
    if not box.isolation.network:
        pytest.skip("no network namespace on this machine (reported as a warning)")
    assert result.status == "error" and not result.passed
    _then_ok(box)


def test_a_background_process_is_killed_with_the_program(box: Sandbox) -> None:
    token = f"{uuid.uuid4().int % 10**9}.5"
    program = (
        "import os, subprocess\n"
        f"subprocess.Popen(['sleep', '{token}'], start_new_session=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    os.execvp('sleep', ['sleep', '{token}'])\n"
        "assert False, 'the daemons are running'\n"
    )
    result = box.run(program)
    assert result.status == "failed"
    assert _processes_with(f"sleep\x00{token}") == []
    _then_ok(box)


def test_isolation_is_reported_and_missing_namespaces_warn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    iso = probe_isolation()
    assert iso.to_dict()["network_namespace"] == iso.namespaces
    if os.geteuid() == 0:
        assert iso.namespaces, "root can always create namespaces with `unshare`"
    monkeypatch.setattr("shutil.which", lambda name: None)
    bare = probe_isolation(refresh=True)
    try:
        assert not bare.namespaces and not bare.network
        assert any("network isolation NOT in force" in w for w in bare.warnings)
    finally:
        monkeypatch.undo()
        probe_isolation(refresh=True)


def test_without_namespaces_programs_still_run_with_limits() -> None:
    iso = Isolation(namespaces=False, user_namespace=False, drop_uid=os.geteuid() == 0)
    with Sandbox(Limits(timeout=2.0, memory_mb=512), workers=1, isolation=iso) as sandbox:
        assert sandbox.run(OK).passed
        assert sandbox.run("bytearray(8 * 1024 ** 3)").status == "memory"
        assert sandbox.run("import sys\nsys.exit(0)").status == "exited"


REMOUNT = (
    "import ctypes\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "MS_REMOUNT, MS_BIND = 32, 4096\n"
    "rc = libc.mount(None, b'/', None, MS_REMOUNT | MS_BIND, None)\n"
    "assert rc == 0, f'remount refused: errno {ctypes.get_errno()}'\n"
)


@pytest.mark.parametrize("mode", ["own uid", "user namespace"])
def test_the_program_cannot_make_the_filesystem_writable_again(mode: str) -> None:
    if not probe_isolation().namespaces:
        pytest.skip("no namespaces on this machine (reported as a warning)")
    if mode == "own uid" and os.geteuid() != 0:
        pytest.skip("only root runs programs under their own user id")
    iso = (
        Isolation(namespaces=True, user_namespace=False, drop_uid=True)
        if mode == "own uid"
        else Isolation(namespaces=True, user_namespace=True, drop_uid=False)
    )
    target = ROOT / f"tunecheck-sandbox-remount-{uuid.uuid4().hex}.txt"
    write = f"with open({str(target)!r}, 'w') as fh:\n    fh.write('escaped')\n"
    with Sandbox(Limits(timeout=5.0), workers=1, isolation=iso) as sandbox:
        try:
            remount = sandbox.run(REMOUNT + write)
            assert not target.exists()
        finally:
            target.unlink(missing_ok=True)
        assert remount.status == "failed" and "remount refused" in remount.detail
        assert sandbox.run(OK).passed
        assert (
            sandbox.run(
                "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)"
            ).status
            == "error"
        )


def test_two_sandboxes_at_once_do_not_touch_each_others_programs() -> None:
    """Two runs on one machine: one's clean-up must not kill the other's running program.

    Without namespaces, the sandbox kills every process of its program's user id after each
    program; were the ids shared, it would kill the other sandbox's program too.
    """
    if os.geteuid() != 0:
        pytest.skip("only root runs programs under user ids of their own")
    # the waiting program runs as its own user id: the flag's folder must be searchable
    folder = Path(tempfile.mkdtemp(prefix="tunecheck-test-flag-", dir="/tmp"))
    os.chmod(folder, 0o755)
    flag = folder / "go"
    waiting = (
        "import os, time\n"
        "for _ in range(6000):\n"
        f"    if os.path.exists({str(flag)!r}):\n"
        "        break\n"
        "    time.sleep(0.01)\n"
        "else:\n"
        "    assert False, 'the flag never came'\n"
    )
    bare = Isolation(namespaces=False, user_namespace=False, drop_uid=True)
    with (
        Sandbox(Limits(timeout=120.0), workers=1) as first,
        Sandbox(Limits(timeout=120.0), workers=1, isolation=bare) as second,
    ):
        assert set(first._uids).isdisjoint(second._uids)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(first.run, waiting)
            uid = first._uids[0]
            while not _pids_of_uid(uid) and not pending.done():  # the program has started
                threading.Event().wait(0.01)
            try:
                assert second.run(OK).passed  # ... and its clean-up kills its own user's processes
            finally:
                flag.touch()
            result = pending.result()
        shutil.rmtree(folder)
        assert result.passed, result.reason()
    # the ids are free again once the sandboxes are closed: their locks are released
    assert first._uid_locks == [] and second._uid_locks == []


def _pids_of_uid(uid: int) -> list[int]:
    return [p for p in map(int, filter(str.isdigit, os.listdir("/proc"))) if _uid_of(p) == uid]
