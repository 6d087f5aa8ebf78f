"""The local stack's demo API keys: one per scope, and the order service's key for reading payments.

Made once in `<state>/api-keys/` and kept, so the keys `saga run` printed stay valid across restarts and
the `saga` command next to it finds the operator's key. Each key is a file of its own (0600, what a
`*_FILE` setting names); `keys` holds only their entries (digests), which the services read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.auth import ALL_SCOPES, Scope, entry_for, new_key
from saga_tools.local_stack.private_files import write_private

# Who holds each local key: the demo callers, one a scope, and the order service (it reads payments).
DEMO_CALLERS: dict[str, Scope] = {
    "demo-shop": Scope.SHOP,
    "demo-carrier": Scope.CARRIER,
    "demo-operator": Scope.OPERATOR,
    "order-service": Scope.PAYMENT_LOOKUP,
}
# The shops whose parcels each demo carrier moves.
DEMO_CARRIER_SHOPS: dict[str, tuple[str, ...]] = {"demo-carrier": ("demo-shop",)}
ENTRIES_FILE = "keys"


@dataclass(frozen=True)
class LocalApiKeys:
    directory: Path

    @property
    def entries_file(self) -> Path:
        return self.directory / ENTRIES_FILE

    def key_file(self, caller: str) -> Path:
        return self.directory / f"{caller}.key"

    def ensure(self) -> None:
        """Make the keys that are missing, and write their entries with the scopes (and shops) they have
        now: a key kept from an earlier start stays valid, with what this version gives it."""
        entries = [
            "# The local stack's API keys (saga_tools/local_stack/local_api_keys.py): "
            "name scopes digest [for=shops]."
        ]
        for name, scope in DEMO_CALLERS.items():
            if not self.key_file(name).exists():
                write_private(self.key_file(name), new_key() + "\n")
            entries.append(entry_for(name, [scope], self.key(name), DEMO_CARRIER_SHOPS.get(name, ())).line())
        text = "\n".join(entries) + "\n"
        if not self.entries_file.exists() or self.entries_file.read_text() != text:
            write_private(self.entries_file, text)

    def key(self, caller: str) -> str:
        return self.key_file(caller).read_text().strip()

    def demo_key_files(self) -> dict[str, Path]:
        """The file of each scope's demo key (what `saga run` prints: the path, so the key stays off the
        screen and out of the terminal's scrollback)."""
        return {
            scope.value: self.key_file(name)
            for name, scope in DEMO_CALLERS.items()
            if name.startswith("demo-")
        }

    def demo_keys(self) -> dict[Scope, str]:
        """The demo key of each scope."""
        return {Scope(scope): self.key(path.stem) for scope, path in self.demo_key_files().items()}

    def environment(self) -> dict[str, str]:
        """The services read the entries; the `saga` command sends the operator's key, the order service
        its own."""
        return {
            "SAGA_API_KEYS_FILE": str(self.entries_file),
            "SAGA_OPERATOR_API_KEY_FILE": str(self.key_file("demo-operator")),
            "ORDER_PAYMENT_API_KEY_FILE": str(self.key_file("order-service")),
        }


def all_scopes_key(caller: str) -> tuple[str, dict[str, str]]:
    """A fresh key with every scope for a harness (the test suites, the benchmark) that plays the shop,
    the carrier and the operator at once, and the variable that adds it to the services' keys (with
    SAGA_API_KEYS_FILE's, which stay active)."""
    key = new_key()
    return key, {"SAGA_API_KEYS": entry_for(caller, ALL_SCOPES, key).line()}
