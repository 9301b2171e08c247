"""A third-party sandbox provider for the tests: bubblewrap under a name researchgym does not know,
loaded as `custom_sandbox:RenamedBwrap` (no code may branch on a provider's name)."""

from researchgym.sandbox.bwrap import BwrapSandbox


class RenamedBwrap(BwrapSandbox):
    name = "renamed-bwrap"
