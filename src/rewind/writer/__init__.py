"""Trace writers: event sinks and the small JSON side files of a trace directory."""
