"""A third-party sandbox provider for the tests: bubblewrap under a name researchgym does not know,
loaded as `custom_sandbox:RenamedBwrap` (no code may branch on a provider's name)."""

from researchgym.sandbox.bwrap import BwrapSandbox
from researchgym.sandbox.local import LocalSandbox


class RenamedBwrap(BwrapSandbox):
    name = "renamed-bwrap"


class PretendsToIsolate(LocalSandbox):
    """A provider that claims isolation it does not have (no `sees_host_paths`): the conformance
    check must catch it."""

    name = "pretends-to-isolate"
    sees_host_paths = False
