"""Policies: everything that turns an observation and an instruction into an action."""

from policies.base import ACTION_DIM, Policy, check_action
from policies.registry import available_policies, make_policy, register_policy

__all__ = ["ACTION_DIM", "Policy", "available_policies", "check_action", "make_policy", "register_policy"]
