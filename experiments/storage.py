"""The default artifact store: Django's ``FileSystemStorage`` rooted at ``settings.ARTIFACT_ROOT``.

``STORAGES["artifacts"]`` names this class unless ``ARTIFACT_STORAGE_BACKEND`` picks another backend
(see ``mlplatform.env.artifact_storage``). It differs from ``FileSystemStorage`` in one way only: without
an explicit ``location`` it uses ``ARTIFACT_ROOT`` instead of ``MEDIA_ROOT``, and follows that setting
when it changes, the way ``FileSystemStorage`` follows ``MEDIA_ROOT`` (tests move ``ARTIFACT_ROOT`` to a
temporary folder with ``override_settings`` / pytest-django's ``settings`` fixture).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils.deconstruct import deconstructible
from django.utils.functional import cached_property


@deconstructible(path="experiments.storage.ArtifactFileSystemStorage")
class ArtifactFileSystemStorage(FileSystemStorage):
    """``FileSystemStorage`` whose location defaults to (and tracks) ``settings.ARTIFACT_ROOT``."""

    @cached_property
    def base_location(self) -> str:
        """The explicit ``location`` option, else ``ARTIFACT_ROOT``."""
        return self._value_or_setting(self._location, str(settings.ARTIFACT_ROOT))

    def _clear_cached_properties(self, setting: str, **kwargs: Any) -> None:
        """Forget the cached location when ``ARTIFACT_ROOT`` changes (and whatever the parent clears)."""
        super()._clear_cached_properties(setting, **kwargs)
        if setting == "ARTIFACT_ROOT":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)
