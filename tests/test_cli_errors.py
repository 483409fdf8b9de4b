"""A bad port or path given to the command line: one line with the fix, exit 2, no traceback."""

from __future__ import annotations

import socket

import pytest

from eks_llm_stack.cli import main, os_error_line


def test_simulate_on_a_busy_port_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["simulate", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "already in use" in err and "another --port" in err


@pytest.mark.parametrize("port", ["70000", "0", "http"])
def test_simulate_on_an_invalid_port_is_a_usage_line(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--port", port])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--port" in err and "1-65535" in err


def test_a_missing_path_is_one_line() -> None:
    line = os_error_line(FileNotFoundError(2, "No such file or directory", "/nowhere/cdk.out"))
    assert line == (
        "no such file or directory (/nowhere/cdk.out) -- fix: check the path (run the step that creates it first)"
    )
    assert "fix: give a port between 1 and 65535" in os_error_line(OverflowError("port must be 0-65535."))
