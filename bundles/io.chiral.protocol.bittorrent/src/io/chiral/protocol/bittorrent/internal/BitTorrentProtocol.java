package io.chiral.protocol.bittorrent.internal;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.SortedMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

import io.chiral.api.ChunkSource;
import io.chiral.api.ContentDirectory;
import io.chiral.api.ContentProtocol;
import io.chiral.api.ContentStore;
import io.chiral.api.Dht;
import io.chiral.api.DownloadRequest;
import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.api.NodeKey;
import io.chiral.api.PeerInfo;
import io.chiral.api.PeerStatus;
import io.chiral.api.TransferHandle;
import io.chiral.bencode.Bencode;
import io.chiral.bencode.BencodeException;
import io.chiral.bencode.Bytes;
import io.chiral.net.ConnectionLimiter;
import io.chiral.net.NetService;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.timeout.IdleStateHandler;

/**
 * BitTorrent as a Chiral {@link ContentProtocol}: downloads from magnet links and {@code .torrent} files and seeds,
 * like a standard client (peer wire BEP 3 with BEP 6 and BEP 10, {@code ut_metadata}, {@code ut_pex}, HTTP and UDP
 * trackers, peers from the mainline DHT), and recognises other Chiral nodes through the {@code chiral} extension.
 * A finished single-file torrent is added to the {@link ContentStore} and its info-hash published in the Chiral DHT
 * as {@code info_hash_idx::<btih>} → CID; a stored file shared with {@link #share} gets a {@code .torrent} written
 * next to it and a magnet link.
 *
 * <p>Torrents survive restarts: each is kept in {@code stateDir} as {@code <btih>.torrent} (or {@code .magnet}
 * before its metadata arrived) with a {@code <btih>.resume} file of verified pieces; pieces claimed there are hashed
 * again at start. Deactivation closes the listening socket, every peer connection and every file.
 */
@Component(service = ContentProtocol.class, property = ContentProtocol.PROTOCOL_PROPERTY + "=" + BitTorrentProtocol.NAME,
        configurationPid = BitTorrentProtocol.PID, configurationPolicy = ConfigurationPolicy.REQUIRE)
@Designate(ocd = BitTorrentProtocol.Config.class)
public class BitTorrentProtocol implements ContentProtocol, Session {
    static final String NAME = "bittorrent";
    static final String PID = "io.chiral.protocol.bittorrent";
    static final String CLIENT = "Chiral 0.1.0";
    private static final Logger LOG = Logger.getLogger(BitTorrentProtocol.class.getName());
    private static final int MAX_TORRENT_FILE = 16 * 1024 * 1024;
    /** How long a provider has to send a file's description over the {@code chiral} extension. */
    static final int DESCRIPTION_SECONDS = 30;
    /** Most open peer connections of the node (every torrent together). */
    static final int MAX_CONNECTIONS = 1000;
    /**
     * Up to 1 MiB of blocks queued per connection before a peer's requests wait (Netty's default is 64 KiB; the
     * kernel's socket buffer holds more): a peer that requests and never reads pins no more than that.
     */
    private static final io.netty.channel.WriteBufferWaterMark WATER_MARK =
            new io.netty.channel.WriteBufferWaterMark(512 << 10, 1 << 20);
    /** Blocks queued towards all peers' sockets together before every peer's requests wait. */
    static final long MAX_UPLOAD_PENDING = 32L << 20;
    private final java.util.concurrent.atomic.AtomicLong uploadPending = new java.util.concurrent.atomic.AtomicLong();

    @ObjectClassDefinition(name = "Chiral BitTorrent transport", description = "Downloads and seeds torrents")
    public @interface Config {
        @AttributeDefinition(description = "TCP port to accept peers on; 0 = the port in portFile if free, else any free port")
        int port() default 0;

        @AttributeDefinition(description = "Address to listen on; 0.0.0.0 = every IPv4 interface")
        String bind() default "0.0.0.0";

        @AttributeDefinition(description = "File remembering the port across restarts; empty = none")
        String portFile() default "";

        @AttributeDefinition(description = "Directory keeping torrents and their resume data")
        String stateDir();

        @AttributeDefinition(description = "Default directory for downloads")
        String downloadDir();

        @AttributeDefinition(description = "Most peer connections per torrent")
        int maxPeersPerTorrent() default 50;

        @AttributeDefinition(description = "Regular unchoke slots per torrent (an optimistic one comes on top)")
        int uploadSlots() default 4;

        @AttributeDefinition(description = "Inbound connections open at once; 0 = " + MAX_CONNECTIONS + ". Never more than "
                + INBOUND_FD_PERCENT + " % of the process's open-file limit; when full, the oldest connection without a"
                + " handshake is closed for a new one")
        int maxInboundConnections() default 0;

        @AttributeDefinition(description = "Inbound connections open at once from one address")
        int maxInboundConnectionsPerAddress() default 128;

        @AttributeDefinition(description = "Milliseconds from accepting a connection to the peer's handshake")
        long handshakeTimeoutMillis() default 30000;

        @AttributeDefinition(description = "Seconds a download may go without any usable source (peer or provider) "
                + "before it fails, resumable; a get may ask for another time; 0 = wait for ever")
        int sourceTimeoutSeconds() default 180;
    }

    /** Share of the open-file limit inbound peer connections may use. */
    static final int INBOUND_FD_PERCENT = 20;

    private final NetService net;
    private final ContentStore store;
    private volatile NodeKey nodeKey;
    private volatile ContentProtocol http;
    private final Path stateDir;
    private final Path downloadDir;
    private final InetAddress bind;
    private final int maxPeers;
    private final int slots;
    private final ConnectionLimiter inbound;
    private final int sourceTimeout;
    private final byte[] peerId;
    private final SecureRandom random = new SecureRandom();
    private final ChannelGroup channels;
    private final Channel server;
    private final int port;
    private final TrackerClient trackerClient;
    private final Map<String, Torrent> torrents = new ConcurrentHashMap<>();
    private final Map<String, Boolean> downloads = new ConcurrentHashMap<>();
    /** Info-hashes of providers' torrents by {@code "<cid> <address>"}, from their provider records. */
    private final Map<String, byte[]> infoHashes = new ConcurrentHashMap<>();
    private volatile Dht dht;
    private volatile ContentDirectory directory;
    private volatile boolean active = true;
    private final java.util.concurrent.ExecutorService disk = java.util.concurrent.Executors.newFixedThreadPool(2, r -> {
        Thread t = new Thread(r, "bittorrent-disk");
        t.setDaemon(true);
        return t;
    });

    @Activate
    public BitTorrentProtocol(Config config, @Reference NetService net, @Reference ContentStore store) throws IOException {
        this.net = net;
        this.store = store;
        if (config.port() < 0 || config.port() > 65535) {
            throw new IllegalArgumentException("bittorrent port " + config.port() + " out of range (0-65535)");
        }
        if (config.stateDir() == null || config.stateDir().isBlank()) {
            throw new IllegalArgumentException("bittorrent: stateDir is not configured");
        }
        this.stateDir = Path.of(config.stateDir());
        this.downloadDir = Path.of(config.downloadDir() == null || config.downloadDir().isBlank()
                ? config.stateDir() : config.downloadDir());
        Files.createDirectories(stateDir);
        this.bind = InetAddress.getByName(config.bind() == null || config.bind().isBlank() ? "0.0.0.0" : config.bind().strip());
        this.maxPeers = Math.max(2, Math.min(500, config.maxPeersPerTorrent()));
        this.slots = Math.max(1, Math.min(50, config.uploadSlots()));
        if (config.maxInboundConnections() < 0 || config.maxInboundConnectionsPerAddress() < 1
                || config.handshakeTimeoutMillis() < 0) {
            throw new IllegalArgumentException("bittorrent: maxInboundConnections must be 0 (default) or positive,"
                    + " maxInboundConnectionsPerAddress positive, handshakeTimeoutMillis not negative");
        }
        int maxInbound = ConnectionLimiter.cap(config.maxInboundConnections(), MAX_CONNECTIONS, INBOUND_FD_PERCENT);
        this.inbound = new ConnectionLimiter("BitTorrent", new ConnectionLimiter.Limits(maxInbound,
                config.maxInboundConnectionsPerAddress(), config.handshakeTimeoutMillis(), 0));
        this.sourceTimeout = Math.max(0, config.sourceTimeoutSeconds());
        this.peerId = newPeerId(random);
        this.channels = new DefaultChannelGroup("chiral-bittorrent", net.group().next(), true);
        this.trackerClient = new TrackerClient(net.group());
        Path portFile = config.portFile().isBlank() ? null : Path.of(config.portFile());
        this.server = listen(config.port(), portFile);
        this.port = ((InetSocketAddress) server.localAddress()).getPort();
        if (portFile != null) {
            try {
                writeAtomically(portFile, (port + "\n").getBytes(StandardCharsets.US_ASCII));
            } catch (IOException e) {
                LOG.warning("cannot record the BitTorrent port in " + portFile + ": " + e);
            }
        }
        LOG.info("BitTorrent transport listening on " + bind.getHostAddress() + ":" + port + " (at most " + maxInbound
                + " inbound connections, " + config.maxInboundConnectionsPerAddress() + " per address; open-file limit "
                + ConnectionLimiter.openFileLimit() + ")");
        loadTorrents();
    }

    /**
     * Tells the inbound {@link ConnectionLimiter} that the peer handshook (it is then a peer of a torrent, no longer a
     * candidate for closing to make room), and leaves the pipeline.
     */
    private static final class HandshakeSeen extends io.netty.channel.ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(io.netty.channel.ChannelHandlerContext ctx, Object msg) throws Exception {
            if (msg instanceof PeerWire.Handshake) {
                ConnectionLimiter.busy(ctx.channel());
                ctx.pipeline().remove(this);
            }
            super.channelRead(ctx, msg);
        }
    }

    /** An Azureus-style peer id: {@code -CH0100-} and 12 random bytes. */
    static byte[] newPeerId(Random random) {
        byte[] id = new byte[20];
        random.nextBytes(id);
        System.arraycopy("-CH0100-".getBytes(StandardCharsets.US_ASCII), 0, id, 0, 8);
        return id;
    }

    private Channel listen(int configured, Path portFile) throws IOException {
        List<Integer> ports = new ArrayList<>();
        if (configured > 0) {
            ports.add(configured);
        } else {
            remembered(portFile).ifPresent(ports::add);
            ports.add(0);
        }
        IOException last = null;
        for (int p : ports) {
            // a socket closed a moment ago by a stopping bundle is released at its selector's next wake-up
            for (int t = 0; t < (p > 0 && configured == 0 ? 20 : 1); t++) {
                try {
                    ServerBootstrap b = new ServerBootstrap().group(net.group()).channel(NioServerSocketChannel.class)
                            .option(ChannelOption.SO_BACKLOG, 128)
                            .handler(inbound)
                            .childOption(ChannelOption.TCP_NODELAY, true)
                            .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, WATER_MARK)
                            .childHandler(new ChannelInitializer<SocketChannel>() {
                                @Override
                                protected void initChannel(SocketChannel ch) {
                                    if (!active || channels.size() > MAX_CONNECTIONS) {
                                        ch.close();
                                        return;
                                    }
                                    channels.add(ch);
                                    PeerWireCodec codec = new PeerWireCodec();
                                    ch.pipeline().addLast("limiter", inbound);
                                    ch.pipeline().addLast("shaper", net.trafficShaper());
                                    ch.pipeline().addLast(new IdleStateHandler(180, 90, 0),
                                            new MseResponder(BitTorrentProtocol.this::infoHashByReq2, random),
                                            codec, new HandshakeSeen(), new Peer(BitTorrentProtocol.this, null, null, codec));
                                }
                            });
                    Channel ch = b.bind(bind, p).syncUninterruptibly().channel();
                    channels.add(ch);
                    return ch;
                } catch (Exception e) {
                    last = e instanceof IOException io ? io : new IOException(e.getMessage(), e);
                    if (!(e instanceof BindException) || t == 19) {
                        break;
                    }
                    try {
                        Thread.sleep(50);
                    } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                        break;
                    }
                }
            }
        }
        throw new IOException("bittorrent: cannot listen on " + bind.getHostAddress() + ":" + ports.get(0) + ": "
                + (last == null ? "?" : last.getMessage()), last);
    }

    private static Optional<Integer> remembered(Path portFile) {
        try {
            if (portFile != null && Files.isRegularFile(portFile) && Files.size(portFile) < 16) {
                int p = Integer.parseInt(Files.readString(portFile).strip());
                return p > 0 && p < 65536 ? Optional.of(p) : Optional.empty();
            }
        } catch (IOException | NumberFormatException e) {
            // unreadable: any port
        }
        return Optional.empty();
    }

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY, target = "(" + Dht.NETWORK_PROPERTY + "=" + Dht.MAINLINE + ")")
    void setDht(Dht d) {
        dht = d;
        for (Torrent t : torrents.values()) {
            dhtLookup(t);
        }
    }

    void unsetDht(Dht d) {
        if (dht == d) {
            dht = null;
        }
    }

    /**
     * The HTTP transport, which fetches the chunks of Chiral providers found by the dual lookup. Bound directly rather
     * than through the protocol manager, which refers back to this component.
     */
    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY, target = "(" + ContentProtocol.PROTOCOL_PROPERTY + "=http)")
    void setHttp(ContentProtocol p) {
        http = p;
    }

    void unsetHttp(ContentProtocol p) {
        if (http == p) {
            http = null;
        }
    }

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    void setNodeKey(NodeKey k) {
        nodeKey = k;
    }

    void unsetNodeKey(NodeKey k) {
        if (nodeKey == k) {
            nodeKey = null;
        }
    }

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    void setDirectory(ContentDirectory d) {
        directory = d;
        for (Torrent t : torrents.values()) {
            publish(t);
        }
    }

    void unsetDirectory(ContentDirectory d) {
        if (directory == d) {
            directory = null;
        }
    }

    @Deactivate
    void deactivate() {
        active = false;
        for (Torrent t : torrents.values()) {
            save(t);
            t.stop();
        }
        if (!channels.close().awaitUninterruptibly(10, TimeUnit.SECONDS)) {
            LOG.warning("BitTorrent connections did not close within 10 s");
        }
        disk.shutdown();
        try {
            if (!disk.awaitTermination(10, TimeUnit.SECONDS)) {
                disk.shutdownNow();
            }
        } catch (InterruptedException e) {
            disk.shutdownNow();
            Thread.currentThread().interrupt();
        }
        LOG.info("BitTorrent transport stopped (port " + port + ")");
    }

    // ---- Session ----

    @Override
    public byte[] peerId() {
        return peerId.clone();
    }

    @Override
    public int listenPort() {
        return port;
    }

    @Override
    public EventLoopGroup group() {
        return net.group();
    }

    @Override
    public java.util.concurrent.Executor disk() {
        return disk;
    }

    @Override
    public String clientName() {
        return CLIENT;
    }

    @Override
    public Extension.ChiralHello chiralHello() {
        NodeKey k = nodeKey;
        if (k == null) {
            return null;
        }
        try {
            return new Extension.ChiralHello(k.nodeId(), 500, "");
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    @Override
    public Random random() {
        return random;
    }

    /** For an encrypted (MSE) inbound handshake: the info-hash of ours whose {@code SHA1("req2", ih)} is given. */
    private byte[] infoHashByReq2(byte[] req2) {
        if (!active) {
            return null;
        }
        for (Torrent t : torrents.values()) {
            byte[] ih = t.infoHash();
            if (java.security.MessageDigest.isEqual(MseResponder.req2(ih), req2)) {
                return ih;
            }
        }
        return null;
    }

    @Override
    public Torrent torrent(byte[] infoHash) {
        return active ? torrents.get(HexFormat.of().formatHex(infoHash)) : null;
    }

    @Override
    public void connect(Torrent torrent, InetSocketAddress address) {
        if (!active) {
            torrent.connectFailed(address, "transport stopped");
            return;
        }
        Bootstrap b = new Bootstrap().group(net.group()).channel(NioSocketChannel.class)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 10_000)
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.WRITE_BUFFER_WATER_MARK, WATER_MARK)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        channels.add(ch);
                        PeerWireCodec codec = new PeerWireCodec(torrent.limits(), torrent.localHandshake());
                        ch.pipeline().addLast("shaper", net.trafficShaper());
                        ch.pipeline().addLast(new IdleStateHandler(180, 90, 0), codec,
                                new Peer(BitTorrentProtocol.this, torrent, address, codec));
                    }
                });
        b.connect(address).addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess()) {
                torrent.connectFailed(address, "cannot connect: " + f.cause().getMessage());
            }
        });
    }

    @Override
    public void announce(Torrent torrent, Trackers.Event event, List<String> urls) {
        if (urls.isEmpty() || port == 0) {
            return;
        }
        Trackers.Announce a = new Trackers.Announce(torrent.infoHash(), peerId, port, torrent.uploaded(),
                torrent.progress().fetchedBytes(), torrent.left(), event, event == Trackers.Event.STOPPED ? 0 : 100,
                java.util.Arrays.hashCode(peerId));
        java.util.concurrent.atomic.AtomicInteger failures = new java.util.concurrent.atomic.AtomicInteger();
        for (String url : urls) {
            trackerClient.announce(url, a).whenComplete((r, e) -> {
                if (event != Trackers.Event.STOPPED) {
                    torrent.trackerResult(url, e == null);
                }
                if (e != null) {
                    LOG.log(Level.INFO, "torrent " + torrent.name() + ": tracker " + url + ": " + e.getMessage());
                    if (failures.incrementAndGet() == urls.size() && event != Trackers.Event.STOPPED) {
                        torrent.announceFailed();
                    }
                    return;
                }
                LOG.fine(() -> "tracker " + url + ": " + r.peers().size() + " peers, interval " + r.interval());
                torrent.addPeers(r.peers(), "tracker");
                // a tracker may list the announcing node itself
                torrent.announced(r.interval(), (int) r.peers().stream().filter(p -> p.getPort() != port).count());
            });
        }
    }

    @Override
    public void dhtLookup(Torrent torrent) {
        if (downloads.containsKey(torrent.hex()) && !torrent.complete() && torrent.seedFile() == null) {
            chiralLookup(torrent);
        }
        Dht d = dht;
        if (d == null || !active) {
            return;
        }
        byte[] ih = torrent.infoHash();
        d.getPeers(ih).whenComplete((lookup, e) -> {
            torrent.dhtLookedUp(lookup == null ? 0 : lookup.queried());
            if (lookup != null) {
                torrent.addPeers(lookup.value(), "dht");
            }
            if (port > 0) {
                // nobody took the announce (the DHT is still joining): try again in 30 s rather than in 15 min
                d.announce(ih, port).whenComplete((n, failure) -> {
                    if (n == null || n == 0) {
                        torrent.lookupAgainIn(30);
                    }
                });
            }
        });
    }

    /**
     * Dual lookup: {@code info_hash_idx::<btih>} in the Chiral DHT names the CID; its providers' BitTorrent addresses
     * become peers of the torrent and their HTTP addresses Chiral sources of its pieces.
     */
    private void chiralLookup(Torrent torrent) {
        ContentDirectory d = directory;
        if (d == null || !active) {
            return;
        }
        NodeKey k = nodeKey;
        String self = k == null ? "" : k.nodeId();
        d.byInfoHash(torrent.hex()).thenAccept(found -> found.ifPresent(cid -> d.providers(cid).thenAccept(list -> {
            for (ContentDirectory.Provider p : list) {
                if (p.nodeId().equals(self) || !p.complete()) {
                    continue;
                }
                List<InetSocketAddress> bt = new ArrayList<>();
                for (String a : p.protocols().getOrDefault(NAME, List.of())) {
                    try {
                        PeerInfo pi = PeerInfo.parse(a, NAME);
                        bt.add(new InetSocketAddress(pi.host(), pi.port()));
                    } catch (IllegalArgumentException e) {
                        // a bad address in someone's record: skip it
                    }
                }
                torrent.addPeers(bt, "chiral-dht");
                for (String a : p.protocols().getOrDefault("http", List.of())) {
                    httpSource(torrent, cid, a);
                }
            }
        }))).exceptionally(e -> {
            LOG.fine(() -> "torrent " + torrent.name() + ": info_hash_idx lookup failed: " + e);
            return null;
        });
    }

    private void httpSource(Torrent torrent, FileId cid, String address) {
        ContentProtocol http = this.http;
        if (http == null) {
            return;
        }
        PeerInfo peer;
        try {
            peer = PeerInfo.parse(address, "http");
        } catch (IllegalArgumentException e) {
            return;
        }
        if (torrent.hasChiralSource(peer.label())) {
            return;
        }
        http.metadata(cid, peer).whenComplete((meta, e) -> {
            if (meta == null || !meta.id().equals(cid)) {
                return;
            }
            try {
                torrent.addChiralSource(new ChiralSource(http.openSource(meta, peer), meta));
            } catch (RuntimeException ex) {
                LOG.fine(() -> "cannot open " + peer.label() + ": " + ex);
            }
        });
    }

    @Override
    public void changed(Torrent torrent) {
        save(torrent);
    }

    /**
     * A file of a finished torrent changed on disk: the torrent stops (its peers are closed). A stored file shared as
     * a torrent is no longer shared; a downloaded one stays listed with the reason, and is dropped at the next start.
     */
    @Override
    public void seedingStopped(Torrent torrent) {
        torrent.stop();
        if (torrent.seedFile() != null) {
            torrents.remove(torrent.hex(), torrent);
            delete(torrent.hex());
        }
    }

    @Override
    public void completed(Torrent torrent) {
        save(torrent);
        Metainfo m = torrent.meta();
        if (m == null || torrent.seedFile() != null) {
            publish(torrent);
            return;
        }
        try {
            FileMetadata stored = null;
            for (Path p : storagePaths(torrent)) {
                FileMetadata f = store.add(p);
                if (m.singleFile()) {
                    stored = f;
                }
            }
            if (stored != null) {
                torrent.fileId(stored.id());
                save(torrent);
                publish(torrent);
            }
        } catch (IOException | RuntimeException e) {
            LOG.warning("torrent " + torrent.name() + ": cannot add the downloaded files to the store: " + e);
        }
    }

    private static List<Path> storagePaths(Torrent t) {
        Path top = t.top();
        if (top == null) {
            return List.of();
        }
        Metainfo m = t.meta();
        if (m.singleFile()) {
            return List.of(top);
        }
        List<Path> out = new ArrayList<>();
        for (Metainfo.FileEntry e : m.files()) {
            if (!e.padding() && e.length() > 0) { // (zero-length files are created, not shared)
                Path p = top;
                for (String part : e.path()) {
                    p = p.resolve(part);
                }
                out.add(p);
            }
        }
        return out;
    }

    /** Publishes {@code info_hash_idx::<btih>} → CID for a single-file torrent whose CID is known. */
    private void publish(Torrent t) {
        ContentDirectory d = directory;
        FileId id = t.fileId();
        if (d == null || id == null) {
            return;
        }
        store.metadata(id).ifPresent(meta -> d.publish(meta, Optional.of(t.hex())));
    }

    @Override
    public int maxPeersPerTorrent() {
        return maxPeers;
    }

    @Override
    public int uploadSlots() {
        return slots;
    }

    @Override
    public int sourceTimeoutSeconds() {
        return sourceTimeout;
    }

    @Override
    public byte[] chiralSign(byte[] message) {
        NodeKey k = nodeKey;
        return k == null ? null : k.sign(message);
    }

    @Override
    public boolean uploadRoom() {
        return uploadPending.get() < MAX_UPLOAD_PENDING;
    }

    @Override
    public void uploadPending(long bytes) {
        uploadPending.addAndGet(bytes);
    }

    // ---- ContentProtocol ----

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public boolean canHandle(String identifier) {
        String s = identifier.strip();
        if (Magnet.looksLikeMagnet(s)) {
            return true;
        }
        return s.toLowerCase(java.util.Locale.ROOT).endsWith(".torrent") && !s.contains("://");
    }

    /**
     * Yes, through the dual lookup: a provider that seeds a file as a torrent publishes the torrent's info-hash in
     * its provider record, and its BitTorrent address then serves the file's chunks by CID (see
     * {@link PeerChunkSource}).
     */
    @Override
    public boolean fetchesByCid() {
        return true;
    }

    @Override
    public List<String> listenAddresses() {
        return server.isActive() ? io.chiral.net.ListenAddresses.of(bind, port) : List.of();
    }

    /** The file's description (chunk hashes) from a Chiral provider's torrent, over the {@code chiral} extension. */
    @Override
    public CompletionStage<FileMetadata> metadata(FileId id, PeerInfo peer) {
        PeerChunkSource s = newSource(id, null, peer);
        return s.description().toCompletableFuture().orTimeout(DESCRIPTION_SECONDS, TimeUnit.SECONDS)
                .whenComplete((m, e) -> s.fail(e == null ? "description received" : "no description: " + e.getMessage()));
    }

    /** A chunk source on the provider's torrent of the file: one peer connection (see {@link PeerChunkSource}). */
    @Override
    public ChunkSource openSource(FileMetadata metadata, PeerInfo peer) {
        return newSource(metadata.id(), metadata, peer);
    }

    private PeerChunkSource newSource(FileId id, FileMetadata file, PeerInfo peer) {
        if (!active) {
            throw new IllegalStateException("the BitTorrent transport is stopping");
        }
        PeerChunkSource s = new PeerChunkSource(net.group().next(), peer, id.hex(), file, peerId, chiralHello(),
                this::chiralSign, CLIENT);
        infoHashOf(id, peer).whenComplete((ih, e) -> {
            if (e != null) {
                s.fail(e instanceof java.util.concurrent.CompletionException c && c.getCause() != null
                        ? c.getCause().getMessage() : e.getMessage());
            } else if (!s.isClosed()) {
                connect(s, ih);
            }
        });
        return s;
    }

    private void connect(PeerChunkSource s, byte[] infoHash) {
        if (!active) {
            s.fail("the BitTorrent transport stopped");
            return;
        }
        s.infoHash(infoHash);
        Bootstrap b = new Bootstrap().group(s.loop()).channel(NioSocketChannel.class)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 10_000)
                .option(ChannelOption.TCP_NODELAY, true)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        channels.add(ch);
                        ch.pipeline().addLast("shaper", net.trafficShaper());
                        ch.pipeline().addLast(new IdleStateHandler(60, 30, 0),
                                new PeerWireCodec(PeerWire.Limits.DEFAULT, s.localHandshake()), s);
                    }
                });
        PeerInfo peer = s.peer();
        b.connect(peer.host(), peer.port()).addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess()) {
                s.fail("cannot connect: " + f.cause().getMessage());
            }
        });
    }

    /**
     * The info-hash under which {@code peer} seeds {@code id}: from its provider record (matched by node id, else by
     * address) in the Chiral DHT, remembered for later sources of the same download.
     */
    private CompletionStage<byte[]> infoHashOf(FileId id, PeerInfo peer) {
        String key = id.hex() + " " + peer.address();
        byte[] known = infoHashes.get(key);
        if (known != null) {
            return CompletableFuture.completedFuture(known);
        }
        ContentDirectory d = directory;
        if (d == null) {
            return CompletableFuture.failedFuture(new IllegalStateException(
                    "the Chiral DHT is not running: cannot find which torrent " + peer.address() + " seeds " + id.shortHex() + " as"));
        }
        return d.providers(id).thenApply(list -> {
            ContentDirectory.Provider match = null;
            for (ContentDirectory.Provider p : list) {
                if (p.infoHash().isEmpty()) {
                    continue;
                }
                if (peer.nodeId() != null ? p.nodeId().equals(peer.nodeId())
                        : p.protocols().getOrDefault(NAME, List.of()).contains(peer.address())) {
                    match = p;
                    break;
                }
            }
            if (match == null) {
                throw new IllegalStateException("no provider record of " + id.shortHex() + " names the torrent "
                        + peer.address() + " seeds it as (the provider shares it over BitTorrent with `share`)");
            }
            byte[] ih = HexFormat.of().parseHex(match.infoHash());
            if (infoHashes.size() > 4096) {
                infoHashes.clear();
            }
            infoHashes.put(key, ih);
            return ih;
        });
    }

    @Override
    public byte[] fileDescription(Torrent t, String cid) {
        FileId id = t.fileId();
        Metainfo m = t.meta();
        if (id == null || m == null || !m.singleFile() || !id.hex().equals(cid)) {
            return null;
        }
        return store.metadata(id).filter(f -> f.size() == m.totalLength()).map(Extension::encodeFileDescription).orElse(null);
    }

    @Override
    public Optional<TransferHandle> startTransfer(DownloadRequest request) {
        String ident = request.identifier().strip();
        byte[] infoHash;
        String name = null;
        Metainfo meta = null;
        byte[] torrentBytes = null;
        List<String> trackers = new ArrayList<>();
        List<InetSocketAddress> peers = new ArrayList<>();
        try {
            if (Magnet.looksLikeMagnet(ident)) {
                Magnet m = Magnet.parse(ident);
                infoHash = m.infoHash();
                name = m.name();
                trackers.addAll(m.trackers());
                for (String pe : m.peers()) {
                    peers.add(address(pe));
                }
            } else {
                Path file = Path.of(ident);
                if (!Files.isRegularFile(file)) {
                    throw new IllegalArgumentException("no such .torrent file: " + file);
                }
                if (Files.size(file) > MAX_TORRENT_FILE) {
                    throw new IllegalArgumentException(file + " is larger than " + MAX_TORRENT_FILE + " bytes: not a torrent");
                }
                torrentBytes = Files.readAllBytes(file);
                meta = Metainfo.parse(torrentBytes);
                infoHash = meta.infoHash();
            }
        } catch (TorrentException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + ident + ": " + e.getMessage(), e);
        }
        for (PeerInfo p : request.sources()) {
            peers.add(new InetSocketAddress(p.host(), p.port()));
        }
        String hex = HexFormat.of().formatHex(infoHash);
        Torrent existing = torrents.get(hex);
        if (existing != null && !existing.state().isFinal()) {
            if (request.sourceTimeout() != null) {
                existing.sourceTimeout(request.sourceTimeout());
            }
            existing.addPeers(peers, "given");
            existing.resume();
            downloads.put(hex, true);
            return Optional.of(existing);
        }
        Path out = request.outputDirectory() != null ? request.outputDirectory() : downloadDir;
        BitSet claimed = null;
        if (existing != null && existing.state() == io.chiral.api.TransferState.COMPLETED && existing.seedingError() == null) {
            if (existing.seedFile() != null
                    || (existing.saveDir().equals(out) && existing.top() != null && Files.exists(existing.top()))) {
                downloads.put(hex, true);
                return Optional.of(existing); // already here (shared from the store, or downloaded to the same place)
            }
        }
        if (existing != null) {
            // downloaded elsewhere before (this download into another directory replaces it), a file of it changed
            // on disk, or it failed (e.g. the disk was full): the pieces it verified in the part are checked again
            if (existing.state() != io.chiral.api.TransferState.COMPLETED && existing.saveDir().equals(out)) {
                claimed = existing.have();
            }
            if (existing.state().isFinal() && existing.state() != io.chiral.api.TransferState.COMPLETED) {
                // a failed or cancelled run of this torrent: again with the metadata it fetched and the peers it was given
                if (meta == null && existing.meta() != null) {
                    meta = existing.meta();
                    torrentBytes = Metainfo.wrapInfo(meta.infoBytes());
                }
                for (InetSocketAddress a : existing.givenPeers()) {
                    if (!peers.contains(a)) {
                        peers.add(a);
                    }
                }
            }
            existing.stop();
            torrents.remove(hex);
        }
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot create " + out + ": " + e.getMessage(), e);
        }
        Torrent t = new Torrent(this, infoHash, name, meta, trackers, out, null, null);
        if (request.sourceTimeout() != null) {
            t.sourceTimeout(request.sourceTimeout());
        }
        if (meta != null) {
            try {
                writeAtomically(stateDir.resolve(hex + ".torrent"), torrentBytes);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot keep the torrent in " + stateDir, e);
            }
            Path fin = Storage.finalTop(meta, out);
            if (!Files.exists(Storage.partTop(meta, out)) && Files.exists(fin)) {
                // the data is there under its name already (downloaded before, or by another client): used as it is
                // when every piece of it verifies, else this download goes to the part and then to "NAME (1)"
                Torrent done = new Torrent(this, infoHash, name, meta, trackers, out, null, fin);
                if (done.sizesMatch() && done.loadPieces(allPieces(meta), false) == meta.pieceCount()) {
                    LOG.info("torrent " + meta.name() + ": complete on disk at " + fin);
                    t = done;
                } else {
                    done.discard();
                }
            }
            if (t.doneTop() == null) {
                int found = t.loadPieces(claimed != null ? claimed : allPieces(meta), false);
                if (found > 0) {
                    LOG.info("torrent " + meta.name() + ": " + found + " of " + meta.pieceCount() + " verified pieces resumed from "
                            + Storage.partTop(meta, out).getFileName());
                }
            }
        } else {
            try {
                writeAtomically(stateDir.resolve(hex + ".magnet"), ident.getBytes(StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot keep the magnet link in " + stateDir, e);
            }
        }
        torrents.put(hex, t);
        downloads.put(hex, true);
        save(t);
        t.start(peers, false);
        if (t.state() == io.chiral.api.TransferState.COMPLETED) {
            Torrent done = t;
            group().next().execute(() -> completed(done));
        }
        return Optional.of(t);
    }

    private static BitSet allPieces(Metainfo m) {
        BitSet b = new BitSet();
        b.set(0, m.pieceCount());
        return b;
    }

    private static InetSocketAddress address(String hostPort) throws TorrentException {
        try {
            PeerInfo p = PeerInfo.parse(hostPort, NAME);
            return new InetSocketAddress(p.host(), p.port());
        } catch (IllegalArgumentException e) {
            throw new TorrentException("bad peer in magnet link: " + e.getMessage());
        }
    }

    @Override
    public Map<String, String> share(FileMetadata metadata, Map<String, List<String>> options) {
        List<String> trackers = options.getOrDefault("tracker", List.of());
        for (String t : trackers) {
            if (!t.matches("(?i)(http|udp)://[^\\s/]+.*")) {
                throw new IllegalArgumentException("not a tracker URL (http://HOST:PORT/announce or udp://HOST:PORT): " + t);
            }
        }
        Path file = store.contentPath(metadata.id()).orElseThrow(
                () -> new IllegalArgumentException("not in the store: " + metadata.id().hex()));
        byte[] torrentBytes;
        Metainfo meta;
        try {
            torrentBytes = Metainfo.create(file, Metainfo.defaultPieceLength(metadata.size()), trackers, List.of(), CLIENT);
            meta = Metainfo.parse(torrentBytes);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        } catch (TorrentException e) {
            throw new IllegalStateException("created an unreadable torrent: " + e.getMessage(), e);
        }
        String hex = meta.infoHashHex();
        Path torrentFile = file.resolveSibling(file.getFileName() + ".torrent");
        try {
            writeAtomically(torrentFile, torrentBytes);
        } catch (IOException e) {
            torrentFile = stateDir.resolve(file.getFileName() + ".torrent");
            try {
                writeAtomically(torrentFile, torrentBytes);
            } catch (IOException e2) {
                throw new UncheckedIOException("cannot write the .torrent next to " + file + " or in " + stateDir, e2);
            }
        }
        try {
            writeAtomically(stateDir.resolve(hex + ".torrent"), torrentBytes);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot keep the torrent in " + stateDir, e);
        }
        Torrent old = torrents.get(hex);
        if (old == null || old.state().isFinal() && old.state() != io.chiral.api.TransferState.COMPLETED) {
            Torrent t = new Torrent(this, meta.infoHash(), meta.name(), meta, trackers, file.getParent(), file, null);
            t.loadPieces(allPieces(meta), true);
            t.fileId(metadata.id());
            torrents.put(hex, t);
            save(t);
            t.start(List.of(), false);
            old = t;
        } else {
            old.addTrackers(trackers);
            List<String> all = old.trackers();
            trackers = all;
        }
        publish(old);
        Map<String, String> out = new LinkedHashMap<>();
        out.put("infoHash", hex);
        out.put("torrent", torrentFile.toString());
        List<String> pe = bind.isAnyLocalAddress() ? List.of() : List.of(bind.getHostAddress() + ":" + port);
        out.put("magnet", new Magnet(meta.infoHash(), meta.name(), trackers, pe, List.of()).toUri());
        return out;
    }

    @Override
    public void seed(FileMetadata metadata) {
        // plain "add" shares over Chiral's own protocols; a torrent is made only when asked (share)
    }

    @Override
    public void stopSeeding(FileId id) {
        for (Torrent t : new ArrayList<>(torrents.values())) {
            if (id.equals(t.fileId()) && t.seedFile() != null) {
                t.stop();
                torrents.remove(t.hex());
                delete(t.hex());
            }
        }
    }

    @Override
    public List<PeerInfo> peers(FileId id) {
        List<PeerInfo> out = new ArrayList<>();
        for (Torrent t : torrents.values()) {
            if (id.equals(t.fileId())) {
                t.peerStatus().forEach(s -> out.add(s.peer()));
            }
        }
        return out;
    }

    @Override
    public List<PeerStatus> peerStatus(String id) {
        String key = id.strip().toLowerCase(java.util.Locale.ROOT);
        List<PeerStatus> out = new ArrayList<>();
        for (Torrent t : torrents.values()) {
            if (t.hex().equals(key) || (t.fileId() != null && t.fileId().hex().equals(key))) {
                out.addAll(t.peerStatus());
            }
        }
        return out;
    }

    @Override
    public List<TransferHandle> transfers() {
        List<TransferHandle> out = new ArrayList<>();
        for (Torrent t : torrents.values()) {
            if (downloads.containsKey(t.hex())) {
                out.add(t);
            }
        }
        return out;
    }

    // ---- persistence ----

    private void save(Torrent t) {
        if (t.state() == io.chiral.api.TransferState.CANCELLED) {
            torrents.remove(t.hex());
            delete(t.hex());
            deletePart(t);
            return;
        }
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("save", t.saveDir().toString());
        if (t.seedFile() != null) {
            d.put("file", t.seedFile().toString());
        }
        if (t.doneTop() != null) {
            d.put("top", t.doneTop().toString()); // the finished data's final name (absent: still in the part)
        }
        Metainfo m = t.meta();
        if (m != null) {
            d.put("have", Torrent.bitfieldBytes(t.have(), m.pieceCount()));
        }
        if (t.fileId() != null) {
            d.put("cid", t.fileId().hex());
        }
        d.put("download", downloads.containsKey(t.hex()) ? 1 : 0);
        d.put("paused", t.isPaused() ? 1 : 0);
        d.put("trackers", t.trackers());
        List<String> given = new ArrayList<>();
        for (InetSocketAddress a : t.givenPeers()) {
            String h = a.getAddress().getHostAddress();
            given.add((h.contains(":") ? "[" + h + "]" : h) + ":" + a.getPort());
        }
        if (!given.isEmpty()) {
            d.put("peers", given);
        }
        try {
            if (m != null && !Files.exists(stateDir.resolve(t.hex() + ".torrent"))) {
                writeAtomically(stateDir.resolve(t.hex() + ".torrent"), Metainfo.wrapInfo(m.infoBytes()));
                Files.deleteIfExists(stateDir.resolve(t.hex() + ".magnet"));
            }
            writeAtomically(stateDir.resolve(t.hex() + ".resume"), Bencode.encode(d));
        } catch (IOException e) {
            LOG.warning("cannot save the state of torrent " + t.name() + ": " + e);
        }
    }

    /** A cancelled download's part file or directory (never the finished data under its final name). */
    private static void deletePart(Torrent t) {
        Metainfo m = t.meta();
        if (m == null || t.seedFile() != null || t.doneTop() != null) {
            return;
        }
        Path part = Storage.partTop(m, t.saveDir());
        try (var walk = Files.walk(part)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (java.nio.file.NoSuchFileException e) {
            // nothing was written
        } catch (IOException | java.io.UncheckedIOException e) {
            LOG.warning("cannot remove " + part + ": " + e);
        }
    }

    private void delete(String hex) {
        for (String ext : new String[] {".torrent", ".magnet", ".resume"}) {
            try {
                Files.deleteIfExists(stateDir.resolve(hex + ext));
            } catch (IOException e) {
                LOG.warning("cannot delete " + hex + ext + ": " + e);
            }
        }
    }

    @SuppressWarnings("unchecked")
    private void loadTorrents() {
        List<Path> resumes;
        try (var s = Files.list(stateDir)) {
            resumes = s.filter(p -> p.getFileName().toString().matches("[0-9a-f]{40}\\.resume")).sorted().toList();
        } catch (IOException e) {
            LOG.warning("cannot list " + stateDir + ": " + e);
            return;
        }
        for (Path r : resumes) {
            String hex = r.getFileName().toString().substring(0, 40);
            try {
                SortedMap<Bytes, Object> d = (SortedMap<Bytes, Object>) Bencode.decode(Files.readAllBytes(r),
                        Bencode.Limits.FILE);
                Path save = Path.of(((Bytes) d.get(Bytes.of("save"))).utf8());
                Path file = d.get(Bytes.of("file")) instanceof Bytes f ? Path.of(f.utf8()) : null;
                boolean download = Long.valueOf(1).equals(d.get(Bytes.of("download")));
                boolean paused = Long.valueOf(1).equals(d.get(Bytes.of("paused")));
                List<String> trackers = new ArrayList<>();
                if (d.get(Bytes.of("trackers")) instanceof List<?> l) {
                    for (Object o : l) {
                        if (o instanceof Bytes b) {
                            trackers.add(b.utf8());
                        }
                    }
                }
                List<InetSocketAddress> given = new ArrayList<>();
                if (d.get(Bytes.of("peers")) instanceof List<?> l) {
                    for (Object o : l) {
                        if (o instanceof Bytes b && given.size() < Torrent.MAX_GIVEN) {
                            try {
                                given.add(address(b.utf8()));
                            } catch (TorrentException e) {
                                LOG.warning("torrent " + hex + ": ignoring a saved peer: " + e.getMessage());
                            }
                        }
                    }
                }
                Path tf = stateDir.resolve(hex + ".torrent");
                Metainfo meta = Files.isRegularFile(tf) ? Metainfo.parse(Files.readAllBytes(tf)) : null;
                String name = null;
                if (meta == null) {
                    Path mf = stateDir.resolve(hex + ".magnet");
                    if (!Files.isRegularFile(mf)) {
                        continue;
                    }
                    name = Magnet.parse(Files.readString(mf)).name();
                }
                FileId cid = d.get(Bytes.of("cid")) instanceof Bytes c && FileId.isCid(c.utf8()) ? FileId.parse(c.utf8()) : null;
                if (file != null) {
                    // a shared stored file: only while the store still serves it unchanged
                    if (cid == null || store.contentPath(cid).filter(file::equals).isEmpty()) {
                        LOG.info("no longer sharing " + file + " over BitTorrent: it left the store or changed");
                        delete(hex);
                        continue;
                    }
                }
                Path top = d.get(Bytes.of("top")) instanceof Bytes tb ? Path.of(tb.utf8()) : null;
                BitSet claimed = meta != null && d.get(Bytes.of("have")) instanceof Bytes have
                        ? fromBitfield(have.toByteArray(), meta.pieceCount()) : null;
                if (meta != null && file == null) {
                    Path part = Storage.partTop(meta, save);
                    if (top != null && !Files.exists(top) && Files.exists(part)) {
                        top = null; // stopped between recording the final name and the rename: still in the part
                    } else if (top == null && !Files.exists(part) && claimed != null
                            && claimed.cardinality() == meta.pieceCount() && Files.exists(Storage.finalTop(meta, save))) {
                        top = Storage.finalTop(meta, save); // finished by a version that wrote in place
                    }
                }
                Torrent t = new Torrent(this, HexFormat.of().parseHex(hex), name, meta, trackers, save, file, top);
                if (claimed != null) {
                    int n = t.loadPieces(claimed, file != null);
                    if (top != null && n < meta.pieceCount()) {
                        // finished before, but its files changed or went: not seeded, and never overwritten
                        LOG.info("no longer seeding " + top + " over BitTorrent: it changed on disk or is gone");
                        t.discard();
                        delete(hex);
                        continue;
                    }
                }
                if (cid != null) {
                    t.fileId(cid);
                }
                torrents.put(hex, t);
                if (download) {
                    downloads.put(hex, true);
                }
                t.start(given, paused);
                LOG.info("torrent " + t.name() + " loaded (" + t.state().name().toLowerCase(java.util.Locale.ROOT) + ")");
            } catch (IOException | BencodeException | TorrentException | RuntimeException e) {
                LOG.warning("cannot load torrent " + hex + " from " + stateDir + ": " + e);
            }
        }
    }

    private static BitSet fromBitfield(byte[] bits, int pieces) {
        BitSet b = new BitSet();
        for (int i = 0; i < pieces && (i >>> 3) < bits.length; i++) {
            if ((bits[i >>> 3] & (0x80 >>> (i & 7))) != 0) {
                b.set(i);
            }
        }
        return b;
    }

    private static void writeAtomically(Path file, byte[] data) throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.write(tmp, data);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
