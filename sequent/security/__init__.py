"""Cross-cutting security checks: the route lists the IDOR, permission and CSRF suites
are generated from (`routes`), and the tests in `tests/`."""
