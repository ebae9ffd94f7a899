"""The per-test transcript: what crossed each boundary while a test ran (statements from the server's log,
HTTP stub exchanges, broker messages, leaks, server log lines), shown under a failure, in JUnit XML, as
GitHub annotations and in ``--testbed-report=PATH.html``; query budgets and the N+1 detector.

It reads ``testbed.observe`` and pytest's hooks and never reaches back into engines.
"""
