"""The one error guard: bad input is exit status 2, a failure of the machine 1, each one line."""

from __future__ import annotations

import pytest

from ftscale.errors import SetupError, UsageError, guard, one_line


def _raise(exc: BaseException) -> int:
    raise exc


@pytest.mark.parametrize(("exc", "status"), [(UsageError("bad\ninput"), 2), (SetupError("no  wheel"), 1)])
def test_an_error_is_one_line_on_stderr_and_its_exit_status(
    exc: Exception, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert guard("ftscale x", lambda: _raise(exc)) == status
    out, err = capsys.readouterr()
    assert out == "" and err == f"ftscale x: error: {one_line(exc)}\n" and err.count("\n") == 1


def test_the_body_s_own_status_passes_through_and_other_errors_propagate() -> None:
    assert guard("p", lambda: 7) == 7
    with pytest.raises(KeyError):
        guard("p", lambda: _raise(KeyError("k")))


def test_one_line_joins_lines_without_doubling_their_punctuation() -> None:
    assert one_line(ValueError("not provisioned;\n  run:  nox\n\nthen\nagain.\nok")) == (
        "not provisioned; run: nox; then; again. ok"
    )
