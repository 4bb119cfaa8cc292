"""Resolve ``--policy`` strings into policy objects.

Valid specs: a registered name (``random``, ``expert``), ``name:argument`` for families that take
one (e.g. a checkpoint folder), or ``package.module:ClassName`` for a user's own class.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from policies.base import Policy

PolicyFactory = Callable[[str | None], Policy]
_REGISTRY: dict[str, PolicyFactory] = {}


def register_policy(name: str, factory: PolicyFactory) -> None:
    """Register ``factory(argument_or_None) -> Policy`` under ``name``."""
    if name in _REGISTRY:
        raise ValueError(f"policy name {name!r} is already registered")
    _REGISTRY[name] = factory


def available_policies() -> list[str]:
    return sorted(_REGISTRY)


def _no_argument(name: str, cls: Callable[[], Policy]) -> PolicyFactory:
    def factory(arg: str | None) -> Policy:
        if arg:
            raise ValueError(f"policy {name!r} takes no argument, got {name}:{arg}")
        return cls()

    return factory


def make_policy(spec: str) -> Policy:
    """Build the policy that ``spec`` names; unknown names fail with the valid choices."""
    if not spec or not spec.strip():
        raise ValueError(
            f"empty policy spec; valid: {', '.join(available_policies())} or package.module:ClassName"
        )
    name, _, arg = spec.partition(":")
    if name in _REGISTRY:
        return _REGISTRY[name](arg or None)
    if arg and "." in name:
        return _load_user_class(name, arg)
    raise ValueError(
        f"unknown policy {spec!r}; valid: {', '.join(available_policies())}, "
        "or package.module:ClassName for your own Policy subclass"
    )


def _load_user_class(module_name: str, class_name: str) -> Policy:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, and whatever the module's own code raises (SyntaxError, ...)
        raise ValueError(
            f"policy module {module_name!r} cannot be imported: {type(exc).__name__}: {exc}"
        ) from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        names = sorted(n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, Policy))
        raise ValueError(f"module {module_name!r} has no class {class_name!r}; Policy classes there: {names}")
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise ValueError(f"{module_name}:{class_name} is not a subclass of policies.base.Policy")
    try:
        return cls()
    except Exception as exc:
        raise ValueError(f"policy {module_name}:{class_name}() raised {type(exc).__name__}: {exc}") from exc


def _expert(arg: str | None) -> Policy:
    from policies.expert import ExpertPolicy

    if arg:
        raise ValueError(f"policy 'expert' takes no argument, got expert:{arg}")
    return ExpertPolicy()


def _random(arg: str | None) -> Policy:
    from policies.random_policy import RandomPolicy

    if arg is None:
        return RandomPolicy()
    try:
        return RandomPolicy(seed=int(arg))
    except ValueError:
        raise ValueError(f"policy 'random' takes an integer seed (random:SEED), got random:{arg}") from None


def _vla(arg: str | None) -> Policy:
    from policies.vla import make_vla

    return make_vla(arg)


def _remote(arg: str | None) -> Policy:
    from policies.remote import make_remote

    return make_remote(arg)


register_policy("random", _random)
register_policy("remote", _remote)
register_policy("expert", _expert)
register_policy("vla", _vla)
