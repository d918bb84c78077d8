"""The engine scenario helpers, shared with the worker tests."""

from sequent.sequences.tests.conftest import _fast_password_hashing, make_contact, make_sequence  # noqa: F401
