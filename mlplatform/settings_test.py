"""Settings for the test suite: the real settings with test-only defaults.

Only what must differ for tests lives here (a throwaway secret key, a fast
password hasher); everything else, including DATABASE_URL and REDIS_URL,
comes from the environment exactly as in production.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-" + "x" * 40)
# Parallel workers share one Redis: separate their channel groups and cache keys (daphne
# processes started by a test inherit this environment, so they join the same namespace).
# Assigned, not defaulted: xdist workers inherit the controller's environment, which already has one.
os.environ["REDIS_PREFIX"] = f"mlplatform-test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
# Throttling has its own tests; the suite as a whole must not trip the shared anonymous limit.
os.environ.setdefault("THROTTLE_ANON", "100000/min")

from mlplatform.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
