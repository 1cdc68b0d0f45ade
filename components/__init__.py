"""Pulumi ComponentResources, one job each. Components never import ``stacks`` or ``workloads``."""
