from tests.money.support import h

__all__ = ["h"]
