"""Scripted experts with privileged state: the benchmark's ceiling and sanity check."""

from policies.expert.policy import ExpertPolicy

__all__ = ["ExpertPolicy"]
