package io.chiral.dht.internal;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;

import io.chiral.api.Dht;
import io.chiral.api.NodeKey;
import io.chiral.net.NetService;

/**
 * One DHT instance per factory configuration of {@code io.chiral.dht}: {@code chiral.dht.network} = {@code mainline}
 * (BEP 5/42/44, k = 8) or {@code chiral} (k = 20, signed Chiral records; its node id is SHA-1 of the node key).
 * The socket runs on the shared event loops of {@link NetService}. Known contacts are saved to
 * {@code nodesFile} every few minutes and on stop, and used to rejoin on the next start together with the
 * configured {@code bootstrap} addresses. The bound port is remembered in {@code portFile}.
 */
@Component(configurationPid = "io.chiral.dht", configurationPolicy = ConfigurationPolicy.REQUIRE, immediate = true,
        service = Dht.class)
public class DhtComponent implements Dht {
    private static final Logger LOG = Logger.getLogger(DhtComponent.class.getName());
    private static final int MAX_SAVED_NODES = 200;

    /** Configuration of one instance (factory PID {@code io.chiral.dht}). */
    public @interface Config {
        /** {@code mainline} or {@code chiral}. */
        String chiral_dht_network();

        /** Address to bind (default all IPv4 interfaces). */
        String bind() default "0.0.0.0";

        /** UDP port; 0 = the one remembered in {@code portFile} if free, else any. */
        int port() default 0;

        /** Comma-separated HOST:PORT contacts to join through. */
        String bootstrap() default "";

        /** Where the bound port is remembered (optional). */
        String portFile() default "";

        /** Where known contacts are kept between runs (optional). */
        String nodesFile() default "";

        /** KRPC query timeout in milliseconds. */
        int queryTimeoutMillis() default 4000;

        /** Chiral records: bytes the whole store may hold (encoded size + overhead per record; 0 = built-in 64 MiB). */
        long recordStoreBytes() default 0;

        /** Chiral records: bytes one publisher key may hold on this node (0 = built-in 4 MiB). */
        long recordBytesPerPublisher() default 0;

        /** Chiral records: bytes one source address may hold on this node (0 = built-in 4 MiB). */
        long recordBytesPerAddress() default 0;
    }

    static final long MAX_JOIN_RETRY_SECONDS = 60;
    private final DhtNode node;
    private final String network;
    private final NetService net;
    private volatile boolean stopped;
    private volatile ScheduledFuture<?> retry;
    @Reference(cardinality = org.osgi.service.component.annotations.ReferenceCardinality.OPTIONAL,
            policy = org.osgi.service.component.annotations.ReferencePolicy.DYNAMIC)
    private volatile org.osgi.service.event.EventAdmin events;
    private final Path nodesFile;
    private ScheduledFuture<?> saver;

    @Activate
    public DhtComponent(Config config, @Reference NetService net, @Reference NodeKey key) throws Exception {
        this.net = net;
        network = config.chiral_dht_network();
        DhtNode.Settings settings = switch (network) {
            case MAINLINE -> DhtNode.Settings.mainline();
            case CHIRAL -> DhtNode.Settings.chiral();
            default -> throw new IllegalArgumentException("io.chiral.dht: unknown network '" + network
                    + "' (use mainline or chiral)");
        };
        settings = settings.withTimeout(java.time.Duration.ofMillis(Math.max(100, config.queryTimeoutMillis())));
        if (settings.chiralRecords()) {
            settings = settings.withRecordBounds(config.recordStoreBytes(), config.recordBytesPerPublisher(),
                    config.recordBytesPerAddress());
        }
        SecureRandom random = new SecureRandom();
        InetAddress bind = InetAddress.getByName(config.bind());
        NodeId id = CHIRAL.equals(network) ? NodeId.of(Bep44.sha1(key.publicKey()))
                : Bep42.isLocal(bind) ? NodeId.random(random) : Bep42.generate(bind, random);
        Path portFile = config.portFile().isBlank() ? null : Path.of(config.portFile());
        nodesFile = config.nodesFile().isBlank() ? null : Path.of(config.nodesFile());
        int port = config.port();
        DhtNode n = null;
        List<Integer> candidates = new ArrayList<>();
        if (port > 0) {
            candidates.add(port);
        } else {
            remembered(portFile).ifPresent(candidates::add);
            candidates.add(0);
        }
        Exception last = null;
        for (int p : candidates) {
            // A socket closed by a bundle that stopped a moment ago is only released once its selector runs
            // again (the JDK defers the close of a registered channel), so a remembered port gets a few tries.
            int tries = p > 0 && port == 0 ? 20 : 1;
            for (int t = 0; t < tries && n == null; t++) {
                DhtNode attempt = new DhtNode(settings, id, net.group(), new InetSocketAddress(bind, p), random);
                try {
                    attempt.start().get(10, TimeUnit.SECONDS);
                    n = attempt;
                } catch (Exception e) {
                    attempt.close();
                    last = e;
                    if (t + 1 < tries) {
                        Thread.sleep(50);
                    }
                }
            }
            if (n != null) {
                break;
            }
        }
        if (n == null) {
            throw new IOException("DHT " + network + ": cannot bind UDP " + bind.getHostAddress() + ":" + candidates.get(0)
                    + ": " + (last == null ? "unknown" : last.getMessage()), last);
        }
        node = n;
        if (portFile != null) {
            writeAtomically(portFile, Integer.toString(node.address().getPort()) + "\n");
        }
        List<String> configured = new ArrayList<>();
        for (String s : config.bootstrap().split(",")) {
            if (!s.isBlank()) {
                configured.add(s.strip());
            }
        }
        LOG.info("DHT " + network + " " + id.hex() + " on UDP " + node.address());
        // names are resolved off the activating thread: a slow or absent resolver must not hold up the node
        startJoin(configured, 0);
        saver = net.group().next().scheduleAtFixedRate(this::saveNodes, 5, 5, TimeUnit.MINUTES);
    }

    private void startJoin(List<String> configured, int attempt) {
        Thread joiner = new Thread(() -> join(configured, attempt), "chiral-dht-join-" + network);
        joiner.setDaemon(true);
        joiner.start();
    }

    /**
     * Joins through the configured and saved contacts; while none of them answers (the network's first node is
     * still starting, or down) tries again after 5 s, doubling up to {@value #MAX_JOIN_RETRY_SECONDS} s.
     */
    private void join(List<String> configured, int attempt) {
        if (stopped) {
            return;
        }
        Set<InetSocketAddress> join = new LinkedHashSet<>();
        for (String s : configured) {
            try {
                InetSocketAddress a = parse(s);
                if (a.isUnresolved()) {
                    LOG.info("DHT " + network + ": cannot resolve bootstrap contact " + s);
                } else if (!(a.getAddress() instanceof java.net.Inet4Address)) {
                    LOG.warning("DHT " + network + ": ignoring bootstrap contact " + s
                            + ": this DHT speaks IPv4 only (BEP 5 compact addresses); give an IPv4 address of that node");
                } else {
                    join.add(a);
                }
            } catch (IllegalArgumentException e) {
                LOG.warning("DHT " + network + ": ignoring bootstrap contact: " + e.getMessage());
            }
        }
        join.addAll(savedNodes());
        if (join.isEmpty()) {
            return;
        }
        node.bootstrap(List.copyOf(join)).whenComplete((size, e) -> {
            if (e == null && size > 0) {
                org.osgi.service.event.EventAdmin ea = events;
                if (ea != null) {
                    ea.postEvent(new org.osgi.service.event.Event(io.chiral.api.ChiralEvents.DHT_JOINED,
                            java.util.Map.of(io.chiral.api.ChiralEvents.PROP_NETWORK, network)));
                }
                LOG.info("DHT " + network + ": joined through " + join.size() + " contact(s), routing table has " + size
                        + " nodes");
                return;
            }
            long delay = Math.min(MAX_JOIN_RETRY_SECONDS, 5L << Math.min(attempt, 4));
            LOG.log(attempt == 0 ? Level.INFO : Level.FINE, "DHT " + network + ": no contact answered"
                    + (e != null ? " (" + e.getMessage() + ")" : "") + "; trying again in " + delay + " s");
            if (!stopped) {
                // names are resolved again on a thread of its own, never on the event loop
                retry = net.group().next().schedule(() -> startJoin(configured, attempt + 1), delay, TimeUnit.SECONDS);
            }
        });
    }

    @Deactivate
    void deactivate() {
        stopped = true;
        ScheduledFuture<?> r = retry;
        if (r != null) {
            r.cancel(false);
        }
        if (saver != null) {
            saver.cancel(false);
        }
        saveNodes();
        node.close();
    }

    DhtNode node() {
        return node;
    }

    /** {@code HOST:PORT}, {@code IPv4:PORT} or {@code [IPv6]:PORT}. */
    static InetSocketAddress parse(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        if (colon <= 0 || colon == hostPort.length() - 1) {
            throw new IllegalArgumentException("not HOST:PORT: '" + hostPort + "'");
        }
        String host = hostPort.substring(0, colon);
        if (host.startsWith("[")) {
            if (!host.endsWith("]") || host.length() < 3) {
                throw new IllegalArgumentException("not [IPv6]:PORT: '" + hostPort + "'");
            }
            host = host.substring(1, host.length() - 1);
        } // else a bare IPv6 address with the port after its last colon, as older node files have them
        int port;
        try {
            port = Integer.parseInt(hostPort.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("not a port number in '" + hostPort + "'");
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("port out of range in '" + hostPort + "'");
        }
        return new InetSocketAddress(host, port);
    }

    private static Optional<Integer> remembered(Path portFile) {
        try {
            if (portFile != null && Files.isRegularFile(portFile) && Files.size(portFile) < 16) {
                int p = Integer.parseInt(Files.readString(portFile).strip());
                return p > 0 && p < 65536 ? Optional.of(p) : Optional.empty();
            }
        } catch (IOException | NumberFormatException e) {
            LOG.fine("ignoring " + portFile + ": " + e);
        }
        return Optional.empty();
    }

    private List<InetSocketAddress> savedNodes() {
        List<InetSocketAddress> out = new ArrayList<>();
        try {
            if (nodesFile != null && Files.isRegularFile(nodesFile) && Files.size(nodesFile) < 64 * 1024) {
                for (String line : Files.readAllLines(nodesFile, StandardCharsets.US_ASCII)) {
                    if (!line.isBlank() && out.size() < MAX_SAVED_NODES) {
                        try {
                            out.add(parse(line.strip()));
                        } catch (IllegalArgumentException e) {
                            LOG.fine("ignoring saved contact '" + line + "'");
                        }
                    }
                }
            }
        } catch (IOException e) {
            LOG.fine("cannot read " + nodesFile + ": " + e);
        }
        return out;
    }

    private void saveNodes() {
        if (nodesFile == null) {
            return;
        }
        try {
            StringBuilder b = new StringBuilder();
            int n = 0;
            for (Contact c : contacts()) {
                if (n++ >= MAX_SAVED_NODES) {
                    break;
                }
                b.append(io.chiral.net.ListenAddresses.hostPort(c.address().getAddress(), c.address().getPort())).append('\n');
            }
            if (n > 0) {
                writeAtomically(nodesFile, b.toString());
            }
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.FINE, "cannot save DHT contacts", e);
        }
    }

    private static void writeAtomically(Path file, String text) throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(tmp, text, StandardCharsets.US_ASCII);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    // ---- Dht ----

    @Override
    public String network() {
        return network;
    }

    @Override
    public String nodeId() {
        return node.id().hex();
    }

    @Override
    public InetSocketAddress address() {
        return node.address();
    }

    @Override
    public Stats stats() {
        DhtNode.Snapshot s = node.snapshot().join();
        return new Stats(network, nodeId(), address(), s.tableSize(), s.buckets(), s.storedPeers(), s.storedItems(),
                s.storedRecords(), s.queriesIn(), s.queriesOut(), s.responsesIn(), s.timeouts(), s.dropped());
    }

    @Override
    public List<Contact> contacts() {
        NodeId self = node.id();
        List<RoutingTable.Entry> entries = new ArrayList<>(node.snapshot().join().entries());
        entries.sort((a, b) -> self.closer(a.contact().id(), b.contact().id()));
        List<Contact> out = new ArrayList<>(entries.size());
        for (RoutingTable.Entry e : entries) {
            out.add(new Contact(e.contact().id().hex(), e.contact().address(), e.lastSeen(), e.failures()));
        }
        return out;
    }

    @Override
    public CompletionStage<Integer> bootstrap(List<InetSocketAddress> nodes) {
        return node.bootstrap(nodes);
    }

    @Override
    public CompletionStage<Lookup<List<InetSocketAddress>>> getPeers(byte[] infoHash) {
        NodeId target = NodeId.of(infoHash);
        // what others answer, plus what was announced to this node itself (the lookup never asks itself)
        return node.lookup(target, io.chiral.dht.internal.Lookup.Kind.GET_PEERS, null)
                .thenCombine(node.localPeers(target), (r, local) -> {
                    java.util.LinkedHashSet<InetSocketAddress> all = new java.util.LinkedHashSet<>(r.peers());
                    all.addAll(local);
                    return new Lookup<>(List.copyOf(all), r.queried(), r.responded(), r.hops(), r.millis());
                });
    }

    @Override
    public CompletionStage<Integer> announce(byte[] infoHash, int port) {
        return node.announce(NodeId.of(infoHash), port);
    }

    @Override
    public CompletionStage<byte[]> putImmutable(byte[] bencodedValue) {
        byte[] target = Bep44.immutableTarget(bencodedValue).bytes();
        return node.putImmutable(bencodedValue).thenApply(n -> target);
    }

    @Override
    public CompletionStage<Lookup<Optional<byte[]>>> getImmutable(byte[] target) {
        return node.lookup(NodeId.of(target), io.chiral.dht.internal.Lookup.Kind.GET, null)
                .thenApply(r -> new Lookup<>(Optional.ofNullable(r.item()).filter(i -> i.key() == null)
                        .map(io.chiral.dht.internal.Lookup.Item::value), r.queried(), r.responded(), r.hops(), r.millis()));
    }

    @Override
    public CompletionStage<Integer> putMutable(byte[] privateSeed, byte[] salt, byte[] bencodedValue, long seq) {
        return node.putMutable(privateSeed, salt, bencodedValue, seq);
    }

    @Override
    public CompletionStage<Lookup<Optional<MutableItem>>> getMutable(byte[] publicKey, byte[] salt) {
        byte[] s = salt == null || salt.length == 0 ? null : salt;
        return node.lookup(Bep44.mutableTarget(publicKey, s), io.chiral.dht.internal.Lookup.Kind.GET, s)
                .thenApply(r -> new Lookup<>(Optional.ofNullable(r.item()).filter(i -> i.key() != null)
                        .map(i -> new MutableItem(i.key(), s == null ? new byte[0] : s, i.seq(), i.value(), i.sig())),
                        r.queried(), r.responded(), r.hops(), r.millis()));
    }
}
