"""While the replay pool may start processes, Ctrl-C is held off and raised after (review R32b F9).

Processes started inside the block inherit SIGINT blocked; the caller's KeyboardInterrupt comes
after the block, never halfway through a start. tests/test_cli_replay_interrupt.py shows it
on a real run.
"""

import signal
import threading

import pytest

from caseroute.replay import run

pytestmark = pytest.mark.usefixtures("python_sigint")


def _sigint_blocked() -> bool:
    return signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def _interrupted_inside(reached: list[str]) -> None:
    with run._ctrl_c_held():
        assert _sigint_blocked()  # what a process started here inherits
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        reached.append("the rest of the block")


def test_a_ctrl_c_while_held_is_raised_after_the_block_not_inside() -> None:
    """A SIGINT arriving inside the block raises KeyboardInterrupt as the block ends."""
    handler = signal.getsignal(signal.SIGINT)
    reached: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        _interrupted_inside(reached)
    assert reached == ["the rest of the block"]
    assert (handler, False) == (signal.getsignal(signal.SIGINT), _sigint_blocked())


def test_without_a_ctrl_c_the_block_leaves_signals_as_they_were() -> None:
    """No SIGINT: nothing is raised; the handler and this thread's mask are as before."""
    handler = signal.getsignal(signal.SIGINT)
    with run._ctrl_c_held():
        pass
    assert (handler, False) == (signal.getsignal(signal.SIGINT), _sigint_blocked())


def test_another_thread_blocks_sigint_for_what_it_starts() -> None:
    """Off the main thread (an admin replay) SIGINT is blocked in the block, and only there."""
    seen: list[bool] = []

    def hold() -> None:
        with run._ctrl_c_held():
            seen.append(_sigint_blocked())
        seen.append(_sigint_blocked())

    thread = threading.Thread(target=hold)
    thread.start()
    thread.join(30)
    assert seen == [True, False]
