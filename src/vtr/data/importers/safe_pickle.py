"""Read a pickle downloaded from the internet without running its code.

``pickle.load`` imports and calls whatever the file names (``os.system`` included). The unpickler here
builds dicts, lists, tuples, strings, bytes and numbers, which need no import, and allows only a few harmless
container types by name; any other name in the file is refused before it is imported.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from vtr.errors import DataFormatError

# Containers a plain-data pickle may name (sets are pickled as a call to the type in protocols 0 to 3).
# "__builtin__" is Python 2's name of "builtins", which protocols 0 to 2 write even from Python 3.
ALLOWED_GLOBALS = frozenset(
    (module, name) for module in ("builtins", "__builtin__") for name in ("set", "frozenset")
) | {("collections", "OrderedDict")}


class RefusedGlobalError(pickle.UnpicklingError):
    """The pickle names a module attribute outside :data:`ALLOWED_GLOBALS`."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global outside :data:`ALLOWED_GLOBALS` (and persistent ids)."""

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed container type; refuse anything else without importing it."""
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise RefusedGlobalError(
            f"it names {module}.{name}, which could run code; only plain data "
            "(dicts, lists, tuples, sets, strings, numbers) is accepted"
        )


def load_plain_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` allowing only builtin containers, strings and numbers.

    Strings pickled by Python 2 are read as UTF-8.

    Raises:
        DataFormatError: the file cannot be read, is not a pickle, or names anything else (a class, a function);
            the message names the file. Nothing in the file is run.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return RestrictedUnpickler(handle, encoding="utf-8").load()
    except OSError as error:
        raise DataFormatError(f"cannot read {path}: {error.strerror or error}") from None
    except RefusedGlobalError as error:
        raise DataFormatError(f"refusing to load {path}: {error}") from None
    except Exception as error:  # noqa: BLE001 - any failure to unpickle means the file is not what we expect
        raise DataFormatError(f"{path} is not a readable pickle ({type(error).__name__}: {error})") from None
