"""Everything a person reads, in their language: gettext catalogs compiled from the ``.po``
sources in ``gateway/locales`` (:mod:`.catalogs`), CLDR amounts, dates and times in the
organisation's time zone (:mod:`.formats`), and Jinja environments that use both
(:mod:`.templates`). Which language a reader gets is decided in :mod:`gateway.domain.locales`.

How to add a language: CONTRIBUTING.md.
"""

from gateway.i18n.catalogs import N_, catalog, localize, translate, translate_plural
from gateway.i18n.formats import Formats

__all__ = ["N_", "Formats", "catalog", "localize", "translate", "translate_plural"]
