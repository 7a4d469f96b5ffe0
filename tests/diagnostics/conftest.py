"""Fixtures shared by the diagnostics tests."""
from __future__ import annotations

import io

import pytest

from rewind import diagnostics


@pytest.fixture(autouse=True)
def clean_diagnostics():
    """Each test starts and ends with rewind's logging, stream, trace id and metrics at rest."""
    def reset():
        diagnostics.teardown_logging()
        diagnostics.use_stream(None)
        diagnostics.clear_trace_id()
        diagnostics.reset_metrics()

    reset()
    yield
    reset()


@pytest.fixture
def stream():
    """An in-memory stand-in for the original stderr."""
    buffer = io.StringIO()
    diagnostics.use_stream(buffer)
    return buffer
