"""The links between the nodes of a three-node Kafka cluster, which the test can cut to isolate one node.

Every connection one node opens to another (replication, transaction markers, the KRaft quorum, a
broker's heartbeats to the active controller) crosses a relay (tests/chaos/relay.py) on the link of that
pair of nodes: one link per pair, so cutting the two links of a node partitions it from the other two and
leaves them connected to each other. Clients never use these links: they reach every node directly on
127.0.0.1, the cut one included (`KafkaCluster`'s peer_route sets the nodes up so).
"""

from __future__ import annotations

import threading
from itertools import combinations

from tests.chaos.netns import NetworkLink, require_links
from tests.chaos.relay import Relay


class PeerLinks:
    def __init__(self, nodes: int = 3) -> None:
        require_links()
        self.nodes = nodes
        self._links: dict[frozenset[int], NetworkLink] = {}
        self._relays: dict[tuple[frozenset[int], int], Relay] = {}
        self._lock = threading.Lock()  # the cluster writes its nodes' settings from several threads
        try:
            for a, b in combinations(range(nodes), 2):
                self._links[frozenset((a, b))] = NetworkLink(f"p{a}{b}")
        except BaseException:
            self.close()
            raise

    def route(self, source: int, target: int, port: int) -> str:
        """Where node `source` connects to reach `port` of node `target` (a `PeerRoute`): a relay on the
        pair's link, made on first use, listening on the same port number (the link's namespace has ports
        of its own, and one port is one node's), so a name that resolves to the link's address in node
        `source` reaches the target's port through the link (`KafkaCluster` relies on this for the
        controllers, whose address a leader hands to its followers itself)."""
        with self._lock:
            # Keyed by link and port: a relay forwards to the port whichever node of the pair asks.
            pair = frozenset((source, target))
            if (pair, port) not in self._relays:
                self._relays[pair, port] = Relay(self._links[pair], port, port=port)
            return self._relays[pair, port].address

    def isolate(self, node: int) -> None:
        """Drop every packet between `node` and the other nodes, both ways, until `rejoin`."""
        for link in self.links_of(node):
            link.cut()

    def rejoin(self, node: int) -> None:
        for link in self.links_of(node):
            link.repair()

    def links_of(self, node: int) -> list[NetworkLink]:
        return [link for pair, link in self._links.items() if node in pair]

    def close(self) -> None:
        for relay in self._relays.values():
            relay.stop()
        for link in self._links.values():
            link.close()
