"""Read the plain values inside a pickle without running any code from it.

Trainer writes ``training_args.bin`` with ``torch.save(TrainingArguments)``: a pickle of
a dataclass holding enums, a ``torch.device``, accelerate's state... ``torch.load``
with ``weights_only=True`` refuses those classes, and a full unpickle would run whatever
callable the file names. Here every class or function the pickle names is replaced by an
inert stand-in that only records its arguments and state (the "restricting globals"
technique of the :mod:`pickle` documentation, taken to its end: nothing is allowed), so
the result is the data only: a dataclass becomes its field dict, an enum its value, a
device its name.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

from tunecheck.errors import TunecheckError

__all__ = ["UnreadablePickle", "plain_values"]


class UnreadablePickle(TunecheckError):
    """The file is not a pickle (or a torch zip archive holding one) this reader handles."""


class _Inert:
    """Stands in for any global a pickle names; calling it records, never executes."""

    qualname = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _InertUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        # a fresh subclass per global, so the stand-in remembers what it replaces
        return type(name, (_Inert,), {"qualname": f"{module}.{name}"})

    def persistent_load(self, pid: Any) -> None:
        # torch tensor storages live outside the pickle; a configuration needs none
        return None


def _plain(obj: Any) -> Any:
    if isinstance(obj, _Inert):
        if hasattr(obj, "state"):  # an object rebuilt from its state: a dataclass's fields
            return _plain(obj.state)
        args = obj.args
        if obj.qualname == "copyreg._reconstructor":  # (cls, base, state) of protocol 0/1
            return _plain(args[2]) if len(args) > 2 else None
        if len(args) == 1:  # Enum(value), torch.device("cpu")
            return _plain(args[0])
        return [_plain(a) for a in args] if args else obj.qualname
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def plain_values(path: Path) -> Any:
    """The data in ``path`` (a plain pickle or a ``torch.save`` zip archive) as plain values.

    Objects become their state (a dict for a dataclass; its keys starting with ``_``,
    cached private values, are dropped at the top level), one-argument constructions
    their argument. Raises :class:`UnreadablePickle` when the file cannot be parsed.
    """
    raw = path.read_bytes()
    if zipfile.is_zipfile(io.BytesIO(raw)):
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"]
            if not names:
                raise UnreadablePickle("a zip archive without data.pkl", where=str(path))
            raw = archive.read(names[0])
    try:
        # _plain inside too: a self-referencing structure ends in RecursionError
        value = _plain(_InertUnpickler(io.BytesIO(raw)).load())
    except Exception as err:  # any malformed pickle: the caller records the hash only
        raise UnreadablePickle(
            f"not a readable pickle ({type(err).__name__}: {err})", where=str(path)
        ) from None
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if not k.startswith("_")}
    return value
