"""The in-process organization harness of test_policies.py, shared with the other API attack tests."""

from test_policies import org  # noqa: F401 - registers the `org` fixture for this directory
