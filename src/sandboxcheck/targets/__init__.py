"""Targets: sandbox wrappers and whole agents, how they are found, pinned and launched."""
