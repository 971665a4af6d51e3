"""The audit commands' Ctrl-C handler is installed only where Ctrl-C raises, and put back after."""

from __future__ import annotations

import signal
import threading

import pytest

from caseroute.cli.audit import _ctrl_c_cuts_postgres

pytestmark = pytest.mark.usefixtures("python_sigint")


def test_on_the_main_thread_it_is_installed_then_python_s_is_put_back() -> None:
    """Inside: caseroute's handler; after: Python's default, as before the command."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with _ctrl_c_cuts_postgres():
        inside = signal.getsignal(signal.SIGINT)
    assert inside is not signal.default_int_handler
    assert callable(inside)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_with_no_statement_waiting_ctrl_c_raises_as_python_s_would() -> None:
    """The handler called with nothing to cut raises KeyboardInterrupt itself."""
    with _ctrl_c_cuts_postgres():
        handler = signal.getsignal(signal.SIGINT)
        assert callable(handler)
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGINT, None)


def test_where_sigint_is_ignored_or_off_the_main_thread_nothing_is_installed() -> None:
    """SIGINT ignored (a background job), or another thread: the handler in place is kept."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _ctrl_c_cuts_postgres():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    seen: list[object] = []

    def elsewhere() -> None:
        with _ctrl_c_cuts_postgres():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]
