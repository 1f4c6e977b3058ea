"""Hypothesis profiles.

Locally (profile ``dev``) every run draws new examples, so property tests keep finding new cases.
CI (profile ``ci``, chosen by ``.ci/run`` or any ``CI`` environment variable) derandomises them:
the examples are fixed by each test's own source, so a submission is judged on the same cases
every time and never fails on a draw nobody can replay. ``print_blob`` prints the line that
reproduces a failure in both.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev", print_blob=True)
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("TICKGUARD_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
