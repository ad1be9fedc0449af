"""Settings for the test suite: the real settings with test-only defaults.

Only what must differ for tests lives here (a throwaway secret key, a fast
password hasher); everything else, including DATABASE_URL and REDIS_URL,
comes from the environment exactly as in production.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-" + "x" * 40)

from mlplatform.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
