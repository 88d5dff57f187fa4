"""Interpreters and their environments: provisioning builds, per-build virtual environments."""
