"""`sequent bench`: standing performance figures measured in a throwaway workspace.

The parent process (``runner``) never loads Django settings for the user's database:
it creates a workspace (a temporary SQLite file or a ``sequent_bench_<pid>``
PostgreSQL database), then runs every measured part in child processes whose
environment points at that workspace only. See docs/BENCHMARKS.md.
"""
