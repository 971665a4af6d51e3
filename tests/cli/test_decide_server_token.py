"""`decide --server` carries the caller's token, and every --timeout is checked by the parser."""

from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.grpc_api.server import RunningServer
from tests.client.test_credentials import protected  # noqa: F401 - the fixture, used by name
from tests.grpc_api.test_auth import CALLER

REQUEST = str(
    Path(__file__).resolve().parents[2] / "examples" / "requests" / "decide-clinical-tx.json"
)


def _token(tmp_path: Path) -> str:
    path = tmp_path / "my.token"
    path.write_text(CALLER + "\n")
    path.chmod(0o600)
    return str(path)


def test_decide_server_sends_the_token_file_and_the_server_audits_its_caller(
    protected: RunningServer,  # noqa: F811 - the fixture
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --token-file a protected server refuses; with it the decision is the caller's."""
    target = f"127.0.0.1:{protected.port}"
    refused = main(["decide", "--server", target, "--request", REQUEST])
    err = capsys.readouterr().err
    assert (refused, "UNAUTHENTICATED" in err) == (1, True)
    argv = ["decide", "--server", target, "--request", REQUEST, "--json"]
    assert main([*argv, "--token-file", _token(tmp_path)]) == 0
    decision_id = capsys.readouterr().out.split('"decision_id": "')[1].split('"')[0]
    record = protected.core.audit.get(decision_id)
    assert record is not None
    assert record.caller == "flow-engine"


@pytest.mark.parametrize(
    "argv",
    [
        ["decide", "--server", "127.0.0.1:1", "--request", REQUEST],
        ["health", "--server", "127.0.0.1:1"],
        ["rules", "list", "--server", "127.0.0.1:1"],
        ["replay", "--server", "127.0.0.1:1", "--candidate", "x@1"],
        ["simulate", "--cases", "1", "--agents", "1", "--seed", "1", "--server", "127.0.0.1:1"],
    ],
    ids=["decide", "health", "rules-list", "replay", "simulate"],
)
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_every_timeout_is_refused_by_the_parser_unless_a_positive_number(
    argv: list[str], value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--timeout 0, negative, nan, inf or text: exit 2 naming --timeout, never a traceback."""
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--timeout", value])
    err = capsys.readouterr().err
    prog = "rules list" if argv[0] == "rules" else argv[0]
    expected = (
        f"caseroute {prog}: error: argument --timeout: --timeout must be a number of seconds "
        f"above 0 and at most 3600, got {value!r}"
    )
    assert (stopped.value.code, err.splitlines()[-1]) == (2, expected)
