"""Development-only code: the Stripe emulator, ``gateway demo`` and its mail sink, the fake clock.

Nothing here runs in production except when ``gateway demo``/``gateway emulator`` is invoked.
``gateway serve`` and the web app never import it; the ``gateway`` command reads only the
emulator's argument list when it builds its parser (:mod:`gateway.cli.emulator`) and imports the
demo inside that command. It ships in the wheel so the demo works from an install and the tests
can import it.

- ``emulator/``: a Stripe stand-in served over real HTTP (``gateway emulator``).
- ``demo.py``, ``demo_mail.py``: ``gateway demo`` (one process, SQLite, sample links, a local
  SMTP sink; the mail sink needs the ``demo`` extra).
- ``clock.py``: ``FakeClock``, a ``gateway.clock.Clock`` that only moves when told to.

The crash-test failpoints stay in ``gateway/failpoints.py``: production code calls
``failpoints.hit()`` at three places, and arming them is an environment variable read by the
process under test (a subprocess), so the hook has to live where production code imports it;
unset, ``hit()`` is one dictionary lookup.
"""
