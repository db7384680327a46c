"""Registries: one small helper behind every name -> factory table of the project (after timm's registry).

Neurons, surrogates, fusions, spike codings, data sets and balancing methods are each a :class:`Registry`, so
they behave the same: ``register`` (a decorator), ``get`` / ``create`` by name, ``available("lif*")`` with
shell wildcards, ``names()``, and one unknown-name error that lists the valid names and close matches::

    FUSIONS = Registry("fusion")

    @FUSIONS.register("concat", description="linear head on [a; v]")
    class ConcatFusion(nn.Module): ...

    FUSIONS.create("concat", dim=512, num_classes=31)
    FUSIONS.available()          # {"concat": "linear head on [a; v]", ...}

``create`` checks keyword arguments against the factory's signature (following ``**kwargs`` up a class's MRO)
and names the ones it does not take.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import numbers
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Registry", "Entry", "accepted_arguments"]

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Entry:
    """One registered name: the factory, a one-line description and registry-specific facts (``meta``)."""

    name: str
    factory: Callable[..., Any]
    description: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:  # entry.kind, entry.source, ...: the meta facts as attributes
        meta = self.__dict__.get("meta", {})
        if key in meta:
            return meta[key]
        raise AttributeError(f"{type(self).__name__} {self.__dict__.get('name')!r} has no attribute {key!r}")


def _init_chain(factory: Callable[..., Any]) -> tuple[list[Callable[..., Any]], bool]:
    """The functions whose keyword arguments ``factory`` takes: a class's ``__init__`` and, while one forwards
    ``**kwargs``, those up its MRO; and whether the chain ends in a bare ``**kwargs``."""
    if inspect.isclass(factory):
        funcs = [c.__init__ for c in factory.__mro__ if "__init__" in vars(c) and c is not object]
    else:
        funcs = [factory]
    for i, fn in enumerate(funcs):
        if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()):
            return funcs[: i + 1], False
    return funcs, bool(funcs)


def accepted_arguments(factory: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    """``({name: default}, takes_any)`` for the keyword arguments of ``factory``.

    For a class, ``**kwargs`` of an ``__init__`` is followed up the MRO, so a subclass that forwards ``**kwargs``
    reports its base's arguments too; a class attribute ``excluded_args`` removes names a subclass refuses.
    ``takes_any`` is True when the chain ends in a bare ``**kwargs`` (nothing can be checked). Arguments
    without a default map to ``inspect.Parameter.empty``.
    """
    funcs, takes_any = _init_chain(factory)
    names: dict[str, Any] = {}
    for fn in funcs:
        for p in inspect.signature(fn).parameters.values():
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self":
                names.setdefault(p.name, p.default)
    for name in getattr(factory, "excluded_args", ()):
        names.pop(name, None)
    return names, takes_any


_PLAIN = (bool, int, float, str, type(None), list, tuple, dict)


def plain_types(factory: Callable[..., Any]) -> dict[str, tuple[tuple[type, ...], str]]:
    """``{argument: (plain types, what the annotation says)}``: for each annotated argument of ``factory``, the
    plain types (``bool``, ``int``, ``float``, ``str``, ``None``, ``list``, ``tuple``, ``dict``: what a config
    file or ``KEY=VALUE`` gives) that its annotation (a class or a union of classes) allows, ``None`` too where
    its default is ``None``: ``str | Surrogate`` gives ``((str,), "str or Surrogate")``. An argument's type is
    the one where it is declared first (a subclass's own, annotated or not, before its base's); one annotated
    otherwise (``Callable``, a ``Literal``, only non-plain classes), or not at all, is left out."""
    out: dict[str, tuple[tuple[type, ...], str]] = {}
    declared: set[str] = set()
    for fn in _init_chain(factory)[0]:
        params = inspect.signature(fn).parameters
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # an annotation that does not resolve here: that function's arguments go unchecked
            hints = {}
        for name, param in params.items():
            if name in declared or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL) or name == "self":
                continue
            declared.add(name)
            hint = hints.get(name)
            if hint is None:
                continue
            union = typing.get_origin(hint) in (typing.Union, types.UnionType)
            members = typing.get_args(hint) if union else (hint,)
            if param.default is None and type(None) not in members:
                members = (*members, type(None))
            plain = tuple(m for m in members if m in _PLAIN)
            if plain and all(inspect.isclass(m) for m in members):
                said = " or ".join("None" if m is type(None) else m.__name__ for m in members)
                out[name] = (plain, said)
    return out


def _fits(value: Any, allowed: tuple[type, ...]) -> bool:
    """Whether a plain value is of one of the plain ``allowed`` types (an int is a float, a bool is neither); a
    value of another kind (a tensor, a surrogate object) is left to the factory."""
    if value is None:
        return type(None) in allowed
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, numbers.Integral):
        return int in allowed or float in allowed
    if isinstance(value, numbers.Real):
        return float in allowed
    for kind in (str, dict, (list, tuple)):
        if isinstance(value, kind):
            return any(issubclass(t, kind) for t in allowed)
    return True


def _where(obj: Any) -> tuple[str | None, str | None]:
    """Where ``obj`` was defined: ``(module, qualified name)``."""
    return getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)


class Registry:
    """A table of named factories.

    Args:
        what: the kind of thing, used in messages ("neuron", "fusion", "method", ...).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}

    # -- registration ---------------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        factory: Callable | None = None,
        *,
        description: str | None = None,
        aliases: tuple[str, ...] = (),
        **meta: Any,
    ):
        """Register ``factory`` under ``name`` (use as a decorator, or pass ``factory``).

        ``description`` defaults to the first line of the factory's docstring; ``meta`` is kept on the entry. A
        name taken by another factory is an error; the same definition run again (a notebook cell re-run, a module
        reloaded: same module and qualified name) replaces its entry.
        """

        def deco(obj):
            old = self._entries.get(name)
            again = old is not None and _where(old.factory) == _where(obj)
            if (name in self._entries and not again) or name in self._aliases:
                raise ValueError(f"{self.what} {name!r} is already registered ({self.get(name).factory})")
            doc = (inspect.getdoc(obj) or "").strip().splitlines()
            desc = description if description is not None else (doc[0] if doc else "")
            self._entries[name] = Entry(name, obj, desc, dict(meta))
            for alias in aliases:
                self._aliases[alias] = name
            return obj

        return deco(factory) if factory is not None else deco

    # -- lookup ---------------------------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases, in any case (``LIF`` is ``lif``) where that
        names one entry."""
        if not isinstance(name, str):
            raise TypeError(f"{self.what} must be given by name (a string), got {type(name).__name__}")
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        folded = {self._aliases.get(k, k) for k in [*self._entries, *self._aliases] if k.lower() == name.lower()}
        if len(folded) == 1:
            return folded.pop()
        raise self.unknown(name)

    def get(self, name: str) -> Entry:
        """The entry of ``name`` (raises ``ValueError`` naming the valid names for an unknown one)."""
        return self._entries[self.resolve(name)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names, sorted, optionally filtered by a shell-style ``pattern`` (``"snntorch.*"``)."""
        names = sorted(self._entries)
        return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern is not None else names

    def available(self, pattern: str | None = None) -> dict[str, str]:
        """``{name: description}`` of the registered names (optionally filtered by ``pattern``)."""
        return {n: self._entries[n].description for n in self.names(pattern)}

    def unknown(self, name: str) -> ValueError:
        candidates = list(self._entries) + list(self._aliases)
        close = difflib.get_close_matches(str(name), candidates, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        return ValueError(f"unknown {self.what} {name!r}; available: {', '.join(self.names())}.{hint}")

    # -- construction ---------------------------------------------------------------------------------------
    def arguments(self, name: str) -> dict[str, Any]:
        """``{argument: default}`` that the factory of ``name`` takes."""
        return accepted_arguments(self.get(name).factory)[0]

    def check_arguments(self, name: str, kwargs: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` naming the arguments of ``kwargs`` that ``name`` does not take, or whose value is
        not of the plain type (:func:`plain_types`) its annotation says (``tau='abc'``, ``detach_reset='yes'``)."""
        accepted, takes_any = accepted_arguments(self.get(name).factory)
        bad = sorted(set(kwargs) - set(accepted))
        if bad and not takes_any:
            raise ValueError(
                f"{self.what} {self.resolve(name)!r} does not take argument(s) {', '.join(bad)}; "
                f"valid: {', '.join(sorted(accepted)) or '(none)'}"
            )
        types_ = plain_types(self.get(name).factory)
        for key, value in kwargs.items():
            if key in types_ and not _fits(value, types_[key][0]):
                raise ValueError(f"{self.what} {self.resolve(name)!r}: {key} must be {types_[key][1]}, got {value!r}")

    def create(self, name: str, /, **kwargs: Any) -> Any:
        """Build ``name`` with ``kwargs`` (checked first: an argument the factory does not take is an error)."""
        self.check_arguments(name, kwargs)
        return self.get(name).factory(**kwargs)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {self.names()})"
