"""A real Apache Kafka broker (KRaft) from Maven Central jars: one node, or three on 127.0.0.1.

No Kafka distribution and no Docker: Maven fetches `org.apache.kafka:kafka_2.13` with its runtime
dependencies into a cache outside the work tree (so a second start downloads nothing), and each node is
`java -cp 'jars/*' kafka.Kafka server.properties` after `kafka.tools.StorageTool format`.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from saga_tools.local_stack.local_kafka_security import LocalKafkaSecurity
from saga_tools.local_stack.ports import free_port, is_listening, wait_for_port
from saga_tools.local_stack.private_files import open_private_log, private_dir, write_private
from saga_tools.local_stack.process import die_with_parent

LOG4J_VERSION = "2.24.3"
READY_TIMEOUT_SECONDS = 60.0


class KafkaSetupError(RuntimeError):
    """Kafka cannot be fetched or started; the message says what to do."""


def kafka_tool_command(
    jars: Path,
    main_class: str,
    *args: str,
    jvm_options: tuple[str, ...] = ("-Xmx256m",),
    args_file: Path | None = None,
) -> list[str]:
    """A command line running a main class from Kafka's jars: the broker, or one of Kafka's own tools
    (e.g. the consumer-group tool), with our log4j2 configuration.

    With `args_file`, the main class and its arguments are written there (0600) and the command line
    names only the file (`java @file`, which the java launcher expands): for arguments that hold a
    secret, which any local user could read on a command line (`ps`, /proc/<pid>/cmdline). The caller
    deletes the file once the program has started.

    Once a broker has left an archive of the classes it loaded (`class_archive`), every JVM on these jars
    maps it instead of loading and verifying those classes again: a broker is ready in 2.2 s instead of
    3.6 s on a quiet 2-core machine, a tool starts on half the CPU time.
    """
    log_config = resources.files("saga_tools.local_stack") / "resources" / "log4j2.properties"
    program = [main_class, *args]
    if args_file is not None:
        write_private(args_file, "".join(f"{_args_file_quoted(arg)}\n" for arg in program))
        program = [f"@{args_file}"]
    archive = class_archive(jars)
    if archive is not None and archive.exists():
        # Quiet: an archive the JVM cannot use (another JDK at the same path) is skipped with a warning on
        # stdout, where a tool's output is parsed.
        jvm_options = (*jvm_options, *_QUIET_ARCHIVE, f"-XX:SharedArchiveFile={archive}")
    return ["java", *jvm_options, f"-Dlog4j2.configurationFile={log_config}", "-cp", f"{jars}/*", *program]


_QUIET_ARCHIVE = ("-Xlog:cds=off,cds+dynamic=off",)


def class_archive(jars: Path) -> Path | None:
    """Where the class-data archive (AppCDS) of the JVMs on `jars` is kept: next to the jars, named after
    the java binary (its path, size and time), as an archive is only valid for the JVM that wrote it.
    None without java. The first broker that stops with none there writes it (`KafkaCluster`)."""
    found = shutil.which("java")
    if found is None:
        return None
    java = Path(found).resolve()
    stat = java.stat()
    key = hashlib.sha256(f"{java}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    return jars.parent / f"classes-{key}.jsa"


def _args_file_quoted(arg: str) -> str:
    """`arg` as one argument of a java @-file: in double quotes, a backslash and a quote escaped."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _require(tool: str, how: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise KafkaSetupError(f"`{tool}` was not found on PATH. {how}")
    return path


def ensure_kafka_jars(cache_dir: Path, version: str) -> Path:
    """The directory holding Kafka `version`'s jars, downloading them with Maven on first use only.

    The cache is keyed by the version and the pom's content, so a changed jar list is fetched anew.
    """
    pom = resources.files("saga_tools.local_stack") / "resources" / "kafka-pom.xml"
    pom_digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:10]
    target = cache_dir / "kafka" / version / pom_digest / "jars"
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = _require(
        "mvn", "Install Maven (e.g. `apt-get install maven`); it fetches Kafka from Maven Central."
    )
    _require("java", "Install Java 17+ (e.g. `apt-get install openjdk-17-jre-headless`).")
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the test suite and `saga run` may fetch at the same time
        if marker.exists():
            return target
        staging = target.parent / f"jars.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        with resources.as_file(pom) as pom_path:
            result = subprocess.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(pom_path),
                    f"-Dkafka.version={version}",
                    f"-Dlog4j.version={LOG4J_VERSION}",
                    "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
                    f"-DoutputDirectory={staging}",
                    "-DincludeScope=runtime",
                ],
                capture_output=True,
                text=True,
            )
        if result.returncode != 0:
            output = (result.stdout + result.stderr)[-3000:]
            raise KafkaSetupError(f"Maven could not fetch Kafka {version} from Maven Central:\n{output}")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        marker.write_text(version)
    return target


@dataclass
class NodePorts:
    broker: int
    controller: int
    # With peer routes only: the node's inter-broker listener for each node's requests, by node index.
    peers: list[int] = field(default_factory=list)


# Where node `source` connects to reach `port` of node `target` (indexes from 0): "host:port".
PeerRoute = Callable[[int, int, int], str]


def controller_host(index: int) -> str:
    """The name node `index`'s controller listener goes by with peer routes (`KafkaCluster.routed_hosts`)."""
    return f"kafka-node-{index + 1}"


def new_cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding: the format Kafka's own `random-uuid` prints.

    Like Kafka's Uuid.randomUuid(), never one starting with "-": the storage tool would read it as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaCluster:
    """One or three combined broker+controller nodes on 127.0.0.1, with data under `state_dir`."""

    def __init__(
        self,
        jars: Path,
        state_dir: Path,
        *,
        nodes: int = 1,
        heap_mb: int | None = None,
        secure: bool = False,
        extra_listeners: Mapping[str, tuple[int, str]] | None = None,
        peer_route: PeerRoute | None = None,
        node_properties: Mapping[str, str | int] | None = None,
    ) -> None:
        """`extra_listeners`: name → (port on 127.0.0.1, `host:port` advertised to its clients), more
        PLAINTEXT listeners of a one-node cluster; a client that bootstraps from the advertised address
        is sent there for everything (the fault suite puts a relay it can cut at that address).

        `peer_route`: a three-node cluster whose nodes reach each other only where it says (the fault
        suite puts relays it can cut there, to partition one node from the other two while clients still
        reach every node directly). Each node then has one inter-broker listener per node, advertised at
        that node's route to it (a broker connects to the address its peer advertises on the broker's own
        `inter.broker.listener.name`: one shared name would send every peer to the same address), and its
        `controller.quorum.voters` name the controllers by names that its own hosts file resolves to its
        routes to them (`routed_hosts`); `peer_route` must keep the port of a controller.

        `node_properties`: settings of every node over the ones made here (a test that kills a node sets a
        shorter broker session, so the controller fences the dead node sooner)."""
        if nodes not in (1, 3):
            raise ValueError("a local Kafka cluster has 1 or 3 nodes")
        if extra_listeners and (nodes != 1 or secure):
            raise ValueError("extra listeners are for a one-node cluster without security")
        if peer_route is not None and (nodes != 3 or secure):
            raise ValueError("peer routes are for a three-node cluster without security")
        self.extra_listeners = dict(extra_listeners or {})
        self.peer_route = peer_route
        self.node_properties = dict(node_properties or {})
        self.jars = jars
        self.state_dir = state_dir
        self.nodes = nodes
        # Secured: SASL_SSL (SCRAM-SHA-512) for clients, TLS with client certificates between the nodes'
        # broker and controller parts, StandardAuthorizer with ACLs
        # (saga_tools/local_stack/local_kafka_security.py).
        self.security = LocalKafkaSecurity(state_dir / "security") if secure else None
        self.heap_mb = heap_mb or (512 if nodes == 1 else 384)
        self.cluster_id = ""
        self.ports: list[NodePorts] = []
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        # Where a node launched while there was no class archive writes one as it exits (`_keep_archive`).
        self._archive_dumps: dict[int, Path] = {}

    # -- layout -------------------------------------------------------------------------------------
    def _node_dir(self, index: int) -> Path:
        return self.state_dir / f"node-{index + 1}"

    def log_path(self, index: int) -> Path:
        return self._node_dir(index) / "broker.log"

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{p.broker}" for p in self.ports)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes.values()]

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Format (first time only) and start every node at once; return when all accept connections.

        The nodes start concurrently because a three-node quorum cannot elect a controller with one node.
        """
        self.prepare()
        self.launch()
        self.wait_ready()

    def prepare(self) -> None:
        """The one-shot steps before a node runs: the layout, and formatting its storage (first time only).
        They leave no process behind, so they may run in any thread (`LocalStack` overlaps them)."""
        _require("java", "Install Java 17+ (e.g. `apt-get install openjdk-17-jre-headless`).")
        self._load_or_create_layout()
        if self.security is not None:
            self.security.prepare()
        with ThreadPoolExecutor(self.nodes) as pool:
            list(pool.map(self._format_if_needed, range(self.nodes)))

    def launch(self) -> None:
        """Start every prepared node. Call it from a thread that outlives the nodes: a node is stopped when
        the thread that started it ends (`die_with_parent` asks for the parent *thread*'s death signal)."""
        for index in range(self.nodes):
            self._launch(index)

    def wait_ready(self) -> None:
        """Return once every launched node accepts connections."""
        for index in range(self.nodes):
            self._wait_ready(index)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every node (Kafka's shutdown hook runs), then SIGKILL what is still alive."""
        for process in self._processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a paused node would not act on SIGTERM
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for index, process in self._processes.items():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self._keep_archive(index, complete=process.returncode in (0, 128 + signal.SIGTERM))
        self._processes.clear()

    def kill(self, index: int) -> None:
        """SIGKILL one node, as a crash would."""
        process = self._processes.pop(index, None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._keep_archive(index, complete=False)

    def pause(self, index: int) -> None:
        """SIGSTOP one node, as a long GC or network stall would: connections stay open, nothing answers."""
        self._processes[index].send_signal(signal.SIGSTOP)

    def resume(self, index: int) -> None:
        """SIGCONT a paused node."""
        self._processes[index].send_signal(signal.SIGCONT)

    def restart(self, index: int) -> None:
        """Start a stopped or killed node again with its data and ports."""
        self.kill(index)
        self._launch(index)
        self._wait_ready(index)

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------------
    def _load_or_create_layout(self) -> None:
        """Reuse the cluster id and ports of an earlier start (warm start); new ones if ports are taken."""
        layout_file = private_dir(self.state_dir) / "cluster.json"
        if layout_file.exists():
            layout = json.loads(layout_file.read_text())
            ports = [NodePorts(**p) for p in layout["ports"]]
            same_mode = layout.get("secure", False) == (self.security is not None) and all(
                bool(p.peers) == (self.peer_route is not None) for p in ports
            )
            if (
                same_mode
                and len(ports) == self.nodes
                and not any(is_listening(port) for p in ports for port in (p.broker, p.controller, *p.peers))
            ):
                self.cluster_id, self.ports = layout["cluster_id"], ports
                return
            shutil.rmtree(self.state_dir)  # the recorded ports are taken, or security changed: start afresh
        private_dir(self.state_dir)
        self.cluster_id = new_cluster_id()
        routed = self.peer_route is not None
        self.ports = [
            NodePorts(free_port(), free_port(), [free_port() for _ in range(self.nodes if routed else 0)])
            for _ in range(self.nodes)
        ]
        layout_file.write_text(
            json.dumps(
                {
                    "cluster_id": self.cluster_id,
                    "ports": [asdict(p) for p in self.ports],
                    "secure": self.security is not None,
                }
            )
        )

    def _properties(self, index: int) -> str:
        ports = self.ports[index]
        voters = ",".join(f"{i + 1}@127.0.0.1:{p.controller}" for i, p in enumerate(self.ports))
        replication = 1 if self.nodes == 1 else 3
        settings = {
            "process.roles": "broker,controller",
            "node.id": index + 1,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{ports.broker},CONTROLLER://127.0.0.1:{ports.controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{ports.broker}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self._node_dir(index) / "data"),
            "num.partitions": 3,
            "default.replication.factor": replication,
            "min.insync.replicas": 1 if self.nodes == 1 else 2,
            "offsets.topic.replication.factor": replication,
            "offsets.topic.num.partitions": 3,
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": 1 if self.nodes == 1 else 2,
            "group.initial.rebalance.delay.ms": 0,
            # The default 128 MiB dedupe buffer is allocated at start and does not fit a small heap.
            "log.cleaner.dedupe.buffer.size": 2 * 1024 * 1024,
            "num.network.threads": 2,
            "num.io.threads": 2,
            "auto.create.topics.enable": "false",
        }
        for name, (port, advertised) in self.extra_listeners.items():
            settings["listeners"] = f"{settings['listeners']},{name}://127.0.0.1:{port}"
            settings["advertised.listeners"] = f"{settings['advertised.listeners']},{name}://{advertised}"
            protocols = settings["listener.security.protocol.map"]
            settings["listener.security.protocol.map"] = f"{protocols},{name}:PLAINTEXT"
        if self.peer_route is not None:
            settings.update(self._routed_peer_properties(index))
        if self.security is not None:
            settings.update(self.security.broker_properties(ports.broker, ports.controller))
        settings.update(self.node_properties)
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _routed_peer_properties(self, index: int) -> dict[str, str | int]:
        """Node `index`'s settings when its peers reach it, and it them, only through `peer_route`.

        Listener FROMNODE<k> of a node takes node k's inter-broker requests; a node's own is plain
        127.0.0.1 (a transaction coordinator sends markers to itself over the network too). Clients stay
        on PLAINTEXT, advertised at 127.0.0.1: they reach every node directly, whatever the routes do."""
        assert self.peer_route is not None
        route, ports = self.peer_route, self.ports[index]
        names = [f"FROMNODE{k + 1}" for k in range(self.nodes)]
        advertised = [
            f"127.0.0.1:{ports.peers[k]}" if k == index else route(k, index, ports.peers[k])
            for k in range(self.nodes)
        ]
        # Controllers by name (each node's hosts file says where a name leads from that node): a KRaft
        # leader hands its followers its own controller listener's host and port (BeginQuorumEpoch's
        # leader endpoints, KIP-853), and they fetch from there, not from `controller.quorum.voters`. With
        # 127.0.0.1 there the quorum's traffic to a leader bypassed the links, and a cut-off active
        # controller kept its quorum (docs/operators/reliability.md).
        voters = [f"{k + 1}@{controller_host(k)}:{p.controller}" for k, p in enumerate(self.ports)]
        return {
            "controller.quorum.voters": ",".join(voters),
            "listeners": ",".join(
                [
                    f"PLAINTEXT://127.0.0.1:{ports.broker}",
                    f"CONTROLLER://{controller_host(index)}:{ports.controller}",
                    *(f"{name}://127.0.0.1:{port}" for name, port in zip(names, ports.peers, strict=True)),
                ]
            ),
            "advertised.listeners": ",".join(
                [
                    f"PLAINTEXT://127.0.0.1:{ports.broker}",
                    *(f"{name}://{at}" for name, at in zip(names, advertised, strict=True)),
                ]
            ),
            "inter.broker.listener.name": names[index],
            "listener.security.protocol.map": ",".join(
                f"{name}:PLAINTEXT" for name in ("PLAINTEXT", "CONTROLLER", *names)
            ),
        }

    def routed_hosts(self, index: int) -> str:
        """Node `index`'s hosts file with peer routes: its own controller name at 127.0.0.1, each peer's
        at the host of its route to that peer's controller port (which must keep the port: the name
        travels with the port the peer listens on), and this machine's names."""
        assert self.peer_route is not None
        lines = [f"127.0.0.1 localhost {socket.gethostname()}", f"127.0.0.1 {controller_host(index)}"]
        for k, ports in enumerate(self.ports):
            if k == index:
                continue
            host, _, port = self.peer_route(index, k, ports.controller).rpartition(":")
            if int(port) != ports.controller:
                raise ValueError(f"a peer route must keep the controller's port: {host}:{port}")
            lines.append(f"{host} {controller_host(k)}")
        return "".join(f"{line}\n" for line in lines)

    def _java(self, index: int, main_class: str, *args: str, args_file: Path | None = None) -> list[str]:
        options: tuple[str, ...] = (
            "-Xms128m",
            f"-Xmx{self.heap_mb}m",
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
        )
        if self.peer_route is not None:
            # The JVM resolves names from this file alone (JDK 9+).
            options = (*options, f"-Djdk.net.hosts.file={self._node_dir(index) / 'hosts'}")
        return kafka_tool_command(self.jars, main_class, *args, jvm_options=options, args_file=args_file)

    def _format_if_needed(self, index: int) -> None:
        node_dir = private_dir(self._node_dir(index))  # what Kafka makes inside is out of others' reach
        properties = node_dir / "server.properties"
        properties.touch(mode=0o600)  # a secured node's properties hold the inter-broker password
        properties.chmod(0o600)
        properties.write_text(self._properties(index))
        if self.peer_route is not None:
            (node_dir / "hosts").write_text(self.routed_hosts(index))
        if (node_dir / "data" / "meta.properties").exists():
            return
        # A secured cluster gets its SCRAM users as it is formatted: they exist before the broker starts.
        # Their passwords go to the tool through an @-file, never on its command line.
        users = self.security.scram_format_args() if self.security is not None else []
        args_file = node_dir / "format.args"
        try:
            result = subprocess.run(
                self._java(
                    index,
                    "kafka.tools.StorageTool",
                    *("format", "-t", self.cluster_id, "-c", str(properties), *users),
                    args_file=args_file,
                ),
                capture_output=True,
                text=True,
            )
        finally:
            args_file.unlink(missing_ok=True)
        if result.returncode != 0:
            output = result.stdout + result.stderr
            if self.security is not None:
                output = self.security.redact(output)
            raise KafkaSetupError(f"formatting Kafka node {index + 1} failed:\n{output}")

    def _launch(self, index: int) -> None:
        node_dir = self._node_dir(index)
        command = self._java(index, "kafka.Kafka", str(node_dir / "server.properties"))
        archive = class_archive(self.jars)
        if archive is not None and not archive.exists():
            # This node writes the archive the next JVMs map (`kafka_tool_command`) as it exits: about 3 s
            # more on its stop, once per JDK. Under a name of its own: others may be writing one too.
            dump = archive.with_name(f"{archive.name}.{uuid.uuid4().hex}.tmp")
            self._archive_dumps[index] = dump
            command[1:1] = [*_QUIET_ARCHIVE, f"-XX:ArchiveClassesAtExit={dump}"]
        with open_private_log(self.log_path(index)) as log:
            self._processes[index] = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def _keep_archive(self, index: int, *, complete: bool) -> None:
        """Put the class archive node `index` wrote as it exited in place (renamed: a JVM never maps a
        half-written one) if the node exited as a stop asks; one cut short or crashed is dropped."""
        dump = self._archive_dumps.pop(index, None)
        if dump is None:
            return
        archive = class_archive(self.jars)
        if complete and archive is not None and dump.exists() and dump.stat().st_size > 0:
            dump.replace(archive)
        else:
            dump.unlink(missing_ok=True)

    def _wait_ready(self, index: int) -> None:
        # On a fixed port the broker opens its socket only once it is registered and unfenced.
        process = self._processes[index]
        if not wait_for_port(
            self.ports[index].broker, READY_TIMEOUT_SECONDS, alive=lambda: process.poll() is None
        ):
            tail = "\n".join(self.log_path(index).read_text(errors="replace").splitlines()[-30:])
            self.stop()
            raise KafkaSetupError(
                f"Kafka node {index + 1} did not accept connections within {READY_TIMEOUT_SECONDS:.0f}s "
                f"(exit code {process.poll()}). Last lines of {self.log_path(index)}:\n{tail}"
            )
