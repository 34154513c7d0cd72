package io.chiral.dht.internal;

import java.net.InetSocketAddress;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.SortedMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

import io.chiral.bencode.Bencode;
import io.chiral.bencode.BencodeException;
import io.chiral.bencode.Bytes;
import io.chiral.dht.internal.Krpc.KrpcException;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.FixedRecvByteBufAllocator;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.socket.DatagramPacket;
import io.netty.channel.socket.nio.NioDatagramChannel;

/**
 * One Kademlia node speaking KRPC over UDP (BEP 5), with BEP 42 id checks, BEP 44 items and, for the Chiral
 * network, signed {@link ChiralRecord}s ({@code rget} / {@code rput}).
 *
 * <p>Threading: all state (routing table, pending queries, storage, lookups) belongs to the channel's event loop;
 * public methods hop onto it and return futures. Nothing here blocks. Every bound is explicit: pending queries,
 * routing table (k per bucket), stored info-hashes, peers per hash, items, record keys and records per key, and the
 * record store in bytes per publisher key, per source address and in total.
 *
 * <p>{@code rget} (Chiral): arguments {@code target} and optionally {@code token}; the answer has {@code token},
 * {@code nodes}, {@code n} (live records held under the target) and {@code recs}. Without a valid token of this node
 * the requester's address is unproven (it may be forged, BEP 5's reason for tokens), so the whole answer stays within
 * {@code max(3 x query, 1 KiB)} and carries only the records that fit; a {@link Lookup} that sees {@code n} larger
 * than what came asks that node once more with the token.
 */
public final class DhtNode implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(DhtNode.class.getName());
    private static final int RECEIVE_BUFFER = 16 * 1024;
    private static final int MAX_VALUES_IN_RESPONSE = 50;
    private static final int MAX_RECORDS_IN_RESPONSE = 16;
    private static final int MAX_RECORD_BYTES_IN_RESPONSE = 8 * 1024;
    /**
     * An {@code rget} from a requester that showed no valid token of this node (its address is unproven, it may be a
     * forged source) is answered with at most {@code max(}{@value #UNVERIFIED_FACTOR}{@code  x the query, }
     * {@value #UNVERIFIED_ANSWER_BYTES}{@code )} bytes: the nodes, a token, the number of records held and only the
     * records that fit. With the token it gets the records (up to {@value #MAX_RECORD_BYTES_IN_RESPONSE} bytes).
     */
    static final int UNVERIFIED_ANSWER_BYTES = 1024;
    static final int UNVERIFIED_FACTOR = 3;
    /**
     * What a stored record costs besides its encoded bytes: its decoded value, keys, maps and entries on the heap
     * (a stored record of ~600 encoded bytes takes ~1.5-2.4 KB of heap), so that the byte bounds bound the heap.
     */
    static final int RECORD_OVERHEAD = 1024;
    private static final int MAX_CONTACTS_PER_RESPONSE = 32;

    /** Tunables of one personality. */
    public record Settings(String network, int k, int alpha, boolean enforceBep42, boolean chiralRecords,
            Bytes version, Duration queryTimeout, Duration peerTtl, Duration itemTtl, Duration refreshInterval,
            Duration maintenanceInterval, int maxPending, int maxInfoHashes, int maxPeersPerHash, int maxItems,
            int maxRecordKeys, int maxRecordsPerKey, long maxRecordBytes, long maxRecordBytesPerPublisher,
            long maxRecordBytesPerAddress) {

        /** The public BitTorrent DHT: k = 8, BEP 42 enforced for non-local peers. */
        public static Settings mainline() {
            return new Settings("mainline", 8, 3, true, false, Bytes.of(new byte[] {'C', 'H', 0, 1}),
                    Duration.ofSeconds(4), Duration.ofMinutes(45), Duration.ofHours(2), Duration.ofMinutes(15),
                    Duration.ofSeconds(30), 2048, 8192, 200, 8192, 0, 0, 0, 0, 0);
        }

        /** The Chiral network: k = 20, signed records. */
        public static Settings chiral() {
            return new Settings("chiral", 20, 3, false, true, Bytes.of(new byte[] {'C', 'H', 0, 1}),
                    Duration.ofSeconds(4), Duration.ofMinutes(45), Duration.ofHours(2), Duration.ofMinutes(15),
                    Duration.ofSeconds(30), 2048, 8192, 200, 8192, 8192, 64, 64L << 20, 4L << 20, 4L << 20);
        }

        public Settings withTimeout(Duration t) {
            return new Settings(network, k, alpha, enforceBep42, chiralRecords, version, t, peerTtl, itemTtl,
                    refreshInterval, maintenanceInterval, maxPending, maxInfoHashes, maxPeersPerHash, maxItems,
                    maxRecordKeys, maxRecordsPerKey, maxRecordBytes, maxRecordBytesPerPublisher, maxRecordBytesPerAddress);
        }

        /**
         * Byte bounds of the record store (each record costs its encoded size plus {@value DhtNode#RECORD_OVERHEAD}):
         * in total, per publisher key and per source address; a value <= 0 keeps the current one.
         */
        public Settings withRecordBounds(long total, long perPublisher, long perAddress) {
            return new Settings(network, k, alpha, enforceBep42, chiralRecords, version, queryTimeout, peerTtl, itemTtl,
                    refreshInterval, maintenanceInterval, maxPending, maxInfoHashes, maxPeersPerHash, maxItems,
                    maxRecordKeys, maxRecordsPerKey, total > 0 ? total : maxRecordBytes,
                    perPublisher > 0 ? perPublisher : maxRecordBytesPerPublisher,
                    perAddress > 0 ? perAddress : maxRecordBytesPerAddress);
        }
    }

    /** A KRPC error answer. */
    public static final class RemoteError extends Exception {
        private static final long serialVersionUID = 1L;
        public final long code;

        RemoteError(long code, String message) {
            super("KRPC error " + code + ": " + message);
            this.code = code;
        }
    }

    private record Pending(InetSocketAddress to, NodeId expected, CompletableFuture<Krpc.Response> future,
            ScheduledFuture<?> timeout, String method) {
    }

    private record StoredItem(byte[] value, byte[] key, byte[] salt, long seq, byte[] sig, long expires) {
    }

    /** A stored record, who sent it ({@code null}: this node's own) and what it costs (see {@link #RECORD_OVERHEAD}). */
    private record StoredRecord(ChiralRecord record, long expires, java.net.InetAddress source, Bytes publisher,
            int cost) {
    }

    final Settings settings;
    final NodeId self;
    private final SecureRandom random;
    private final EventLoopGroup group;
    private final InetSocketAddress bindAddress;
    final RoutingTable table;
    private final Map<Bytes, Pending> pending = new HashMap<>();
    private final LinkedHashMap<NodeId, LinkedHashMap<InetSocketAddress, Long>> peers = new LinkedHashMap<>();
    private final LinkedHashMap<NodeId, StoredItem> items = new LinkedHashMap<>();
    private final LinkedHashMap<NodeId, LinkedHashMap<Bytes, StoredRecord>> records = new LinkedHashMap<>();
    private final Map<Bytes, Long> recordBytesByPublisher = new HashMap<>();
    private final Map<java.net.InetAddress, Long> recordBytesBySource = new HashMap<>();
    private long recordBytes;
    private final Set<NodeId> pinging = new HashSet<>();
    private final LinkedHashMap<java.net.InetAddress, long[]> rates = new LinkedHashMap<>();
    static final int QUERIES_PER_SECOND_PER_IP = 100;
    private static final int MAX_RATE_ENTRIES = 4096;
    private Tokens tokens;
    private Channel channel;
    private EventLoop loop;
    private ScheduledFuture<?> maintenance;
    private volatile boolean closed;
    private volatile InetSocketAddress externalAddress;
    private long queriesIn;
    private long queriesOut;
    private long responsesIn;
    private long timeouts;
    private long dropped;
    private long lastRefresh;

    public DhtNode(Settings settings, NodeId self, EventLoopGroup group, InetSocketAddress bindAddress, SecureRandom random) {
        this.settings = settings;
        this.self = self;
        this.group = group;
        this.bindAddress = bindAddress;
        this.random = random;
        this.table = new RoutingTable(self, settings.k());
    }

    /** Binds the UDP socket; completes with the bound address. */
    public CompletableFuture<InetSocketAddress> start() {
        CompletableFuture<InetSocketAddress> done = new CompletableFuture<>();
        Bootstrap b = new Bootstrap().group(group).channel(NioDatagramChannel.class)
                .option(ChannelOption.RCVBUF_ALLOCATOR, new FixedRecvByteBufAllocator(RECEIVE_BUFFER))
                .handler(new SimpleChannelInboundHandler<DatagramPacket>() {
                    @Override
                    protected void channelRead0(ChannelHandlerContext ctx, DatagramPacket p) {
                        ByteBuf buf = p.content();
                        byte[] data = new byte[buf.readableBytes()];
                        buf.getBytes(buf.readerIndex(), data);
                        receive(data, p.sender());
                    }

                    @Override
                    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                        dropped++;
                        LOG.log(Level.FINE, "DHT " + settings.network() + ": " + cause, cause);
                    }
                });
        ChannelFuture f = b.bind(bindAddress);
        f.addListener(x -> {
            if (!x.isSuccess()) {
                done.completeExceptionally(x.cause());
                return;
            }
            channel = f.channel();
            loop = channel.eventLoop();
            loop.execute(() -> {
                tokens = new Tokens(random, now());
                lastRefresh = now();
                long period = settings.maintenanceInterval().toMillis();
                maintenance = loop.scheduleAtFixedRate(this::maintain, period, period, TimeUnit.MILLISECONDS);
                done.complete((InetSocketAddress) channel.localAddress());
            });
        });
        return done;
    }

    public InetSocketAddress address() {
        return channel == null ? bindAddress : (InetSocketAddress) channel.localAddress();
    }

    public NodeId id() {
        return self;
    }

    /** Our address as the last node that answered saw it (BEP 42 {@code ip}); null until someone told us. */
    public InetSocketAddress externalAddress() {
        return externalAddress;
    }

    @Override
    public void close() {
        closed = true;
        Channel c = channel;
        if (c == null) {
            return;
        }
        CompletableFuture<Void> cleaned = new CompletableFuture<>();
        try {
            loop.execute(() -> {
                if (maintenance != null) {
                    maintenance.cancel(false);
                }
                for (Pending p : List.copyOf(pending.values())) {
                    p.timeout().cancel(false);
                    p.future().completeExceptionally(new IllegalStateException("DHT closed"));
                }
                pending.clear();
                cleaned.complete(null);
            });
            cleaned.get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            LOG.log(Level.FINE, "DHT close", e);
        }
        c.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
    }

    static long now() {
        return System.currentTimeMillis();
    }

    // ---- running on the event loop ----

    /** Runs {@code task} on the event loop and completes with its result (or exception). */
    <T> CompletableFuture<T> onLoop(Supplier<CompletableFuture<T>> task) {
        CompletableFuture<T> out = new CompletableFuture<>();
        if (closed || loop == null) {
            out.completeExceptionally(new IllegalStateException("DHT " + settings.network() + " is not running"));
            return out;
        }
        Runnable r = () -> {
            try {
                task.get().whenComplete((v, e) -> {
                    if (e != null) {
                        out.completeExceptionally(e);
                    } else {
                        out.complete(v);
                    }
                });
            } catch (RuntimeException e) {
                out.completeExceptionally(e);
            }
        };
        if (loop.inEventLoop()) {
            r.run();
        } else {
            loop.execute(r);
        }
        return out;
    }

    boolean inLoop() {
        return loop != null && loop.inEventLoop();
    }

    // ---- incoming ----

    void receive(byte[] data, InetSocketAddress from) {
        if (closed) {
            return;
        }
        Krpc.Message m;
        try {
            m = Krpc.decode(data, 0, data.length);
        } catch (KrpcException e) {
            dropped++;
            if (e.transaction() != null && data.length > 0) {
                send(Krpc.error(e.transaction(), e.code(), e.getMessage()), from);
            }
            return;
        }
        try {
            if (m instanceof Krpc.Query q) {
                handleQuery(q, from, data.length);
            } else if (m instanceof Krpc.Response r) {
                handleResponse(r, from);
            } else if (m instanceof Krpc.Error e) {
                handleError(e, from);
            }
        } catch (BadArgument e) {
            dropped++;
            send(Krpc.error(m.transaction(), Krpc.PROTOCOL_ERROR, e.getMessage()), from);
        } catch (RuntimeException e) {
            dropped++;
            LOG.log(Level.FINE, "DHT " + settings.network() + ": message from " + from + " failed", e);
            send(Krpc.error(m.transaction(), Krpc.SERVER_ERROR, "server error"), from);
        }
    }

    /** A query argument of the wrong type or size: answered with error 203. */
    static final class BadArgument extends RuntimeException {
        private static final long serialVersionUID = 1L;

        BadArgument(String message) {
            super(message, null, false, false);
        }
    }

    private static NodeId id20(SortedMap<Bytes, Object> args, String name) {
        if (args.get(Bytes.of(name)) instanceof Bytes b && b.length() == NodeId.LENGTH) {
            return NodeId.of(b.toByteArray());
        }
        throw new BadArgument("argument '" + name + "' must be 20 bytes");
    }

    private static Bytes bytesArg(SortedMap<Bytes, Object> args, String name, int max, boolean required) {
        Object o = args.get(Bytes.of(name));
        if (o == null && !required) {
            return null;
        }
        if (o instanceof Bytes b && b.length() <= max) {
            return b;
        }
        throw new BadArgument("argument '" + name + "' missing or longer than " + max + " bytes");
    }

    private static Long longArg(SortedMap<Bytes, Object> args, String name, boolean required) {
        Object o = args.get(Bytes.of(name));
        if (o == null && !required) {
            return null;
        }
        if (o instanceof Long l) {
            return l;
        }
        throw new BadArgument("argument '" + name + "' must be an integer");
    }

    private boolean acceptable(NodeId id, InetSocketAddress from) {
        return !settings.enforceBep42() || Bep42.valid(id, from.getAddress());
    }

    /**
     * At most {@value #QUERIES_PER_SECOND_PER_IP} queries per second from one non-loopback address are answered
     * (a flood or a reflection attempt costs us little); the table of addresses is bounded.
     */
    private boolean overLimit(InetSocketAddress from) {
        java.net.InetAddress ip = from.getAddress();
        if (ip.isLoopbackAddress()) {
            return false;
        }
        long second = now() / 1000;
        long[] w = rates.get(ip);
        if (w == null) {
            if (rates.size() >= MAX_RATE_ENTRIES) {
                evictOldest(rates);
            }
            w = new long[] {second, 0};
            rates.put(ip, w);
        }
        if (w[0] != second) {
            w[0] = second;
            w[1] = 0;
        }
        return ++w[1] > QUERIES_PER_SECOND_PER_IP;
    }

    private void handleQuery(Krpc.Query q, InetSocketAddress from, int queryLength) {
        queriesIn++;
        if (overLimit(from)) {
            dropped++;
            return;
        }
        SortedMap<Bytes, Object> a = q.args();
        boolean readOnly = a.get(Bytes.of("ro")) instanceof Long ro && ro == 1;
        if (!readOnly && from.getAddress() instanceof java.net.Inet4Address && from.getPort() != 0
                && acceptable(q.sender(), from)) {
            touch(new Contact(q.sender(), from));
        }
        Map<String, Object> r = new LinkedHashMap<>();
        switch (q.method()) {
            case "ping" -> {
            }
            case "find_node" -> r.put("nodes", Contact.encodeNodes(table.closest(id20(a, "target"), settings.k())));
            case "get_peers" -> {
                NodeId ih = id20(a, "info_hash");
                r.put("token", tokens.issue(from.getAddress(), now()));
                r.put("nodes", Contact.encodeNodes(table.closest(ih, settings.k())));
                List<byte[]> values = peerValues(ih);
                if (!values.isEmpty()) {
                    r.put("values", values);
                }
            }
            case "announce_peer" -> {
                NodeId ih = id20(a, "info_hash");
                Bytes token = bytesArg(a, "token", 64, true);
                long port = longArg(a, "port", false) == null ? 0 : longArg(a, "port", false);
                boolean implied = a.get(Bytes.of("implied_port")) instanceof Long ip && ip == 1;
                if (!tokens.valid(token.toByteArray(), from.getAddress(), now())) {
                    send(Krpc.error(q.transaction(), Krpc.PROTOCOL_ERROR, "bad token"), from);
                    return;
                }
                int p = implied ? from.getPort() : (int) port;
                if (p < 1 || p > 65535) {
                    throw new BadArgument("port out of range");
                }
                storePeer(ih, new InetSocketAddress(from.getAddress(), p));
            }
            case "get" -> {
                NodeId target = id20(a, "target");
                Long seq = longArg(a, "seq", false);
                r.put("token", tokens.issue(from.getAddress(), now()));
                r.put("nodes", Contact.encodeNodes(table.closest(target, settings.k())));
                StoredItem it = items.get(target);
                if (it != null && it.expires() > now()) {
                    if (it.key() != null) {
                        r.put("k", it.key());
                        r.put("seq", it.seq());
                        r.put("sig", it.sig());
                        if (seq == null || it.seq() > seq) {
                            r.put("v", rawValue(it.value()));
                        }
                    } else {
                        r.put("v", rawValue(it.value()));
                    }
                }
            }
            case "put" -> {
                if (!handlePut(q, from)) {
                    return;
                }
            }
            case "rget" -> {
                if (!settings.chiralRecords()) {
                    unknown(q, from);
                    return;
                }
                NodeId target = id20(a, "target");
                Bytes shown = bytesArg(a, "token", 64, false);
                boolean verified = shown != null && tokens.valid(shown.toByteArray(), from.getAddress(), now());
                r.put("token", tokens.issue(from.getAddress(), now()));
                r.put("nodes", Contact.encodeNodes(table.closest(target, settings.k())));
                int held = liveRecords(target);
                if (held > 0) {
                    r.put("n", (long) held);
                }
                int budget = MAX_RECORD_BYTES_IN_RESPONSE;
                if (!verified) {
                    int base = Krpc.response(q.transaction(), self, r, settings.version(), compactAddress(from)).length;
                    budget = Math.max(UNVERIFIED_FACTOR * queryLength, UNVERIFIED_ANSWER_BYTES) - base - 8; // "4:recsle"
                }
                List<Object> recs = recordValues(target, budget);
                if (!recs.isEmpty()) {
                    r.put("recs", recs);
                }
            }
            case "rput" -> {
                if (!settings.chiralRecords()) {
                    unknown(q, from);
                    return;
                }
                Bytes token = bytesArg(a, "token", 64, true);
                if (!tokens.valid(token.toByteArray(), from.getAddress(), now())) {
                    send(Krpc.error(q.transaction(), Krpc.PROTOCOL_ERROR, "bad token"), from);
                    return;
                }
                ChiralRecord rec;
                try {
                    rec = ChiralRecord.parse(a.get(Bytes.of("rec")));
                } catch (IllegalArgumentException e) {
                    send(Krpc.error(q.transaction(), Bep44.INVALID_SIGNATURE, "rejected record: " + e.getMessage()), from);
                    return;
                }
                if (!rec.target().equals(id20(a, "target"))) {
                    throw new BadArgument("record key does not hash to the target");
                }
                String refusal = storeRecord(rec, from.getAddress());
                if (refusal != null) {
                    send(Krpc.error(q.transaction(), Bep44.SEQ_TOO_LOW, refusal), from);
                    return;
                }
            }
            default -> {
                unknown(q, from);
                return;
            }
        }
        send(Krpc.response(q.transaction(), self, r, settings.version(), compactAddress(from)), from);
    }

    /** BEP 42: every answer tells the requester the address it came from (6 bytes, compact peer form). */
    private static Bytes compactAddress(InetSocketAddress from) {
        return from.getAddress() instanceof java.net.Inet4Address ? Bytes.of(Contact.encodePeer(from)) : null;
    }

    private void unknown(Krpc.Query q, InetSocketAddress from) {
        send(Krpc.error(q.transaction(), Krpc.METHOD_UNKNOWN, "method unknown: " + q.method()), from);
    }

    /** Decoded value of stored bencoded bytes (stored values were validated when they were put). */
    private static Object rawValue(byte[] bencoded) {
        try {
            return Bencode.decode(bencoded, Bencode.Limits.NETWORK);
        } catch (BencodeException e) {
            throw new IllegalStateException("stored value no longer decodes", e);
        }
    }

    /** BEP 44 put; false when it answered with an error itself. */
    private boolean handlePut(Krpc.Query q, InetSocketAddress from) {
        SortedMap<Bytes, Object> a = q.args();
        Bytes token = bytesArg(a, "token", 64, true);
        Object v = a.get(Bytes.of("v"));
        if (v == null) {
            throw new BadArgument("put without 'v'");
        }
        byte[] value = Bencode.encode(v);
        if (value.length > Bep44.MAX_VALUE) {
            send(Krpc.error(q.transaction(), Bep44.VALUE_TOO_BIG, "message (v field) too big"), from);
            return false;
        }
        if (!tokens.valid(token.toByteArray(), from.getAddress(), now())) {
            send(Krpc.error(q.transaction(), Krpc.PROTOCOL_ERROR, "bad token"), from);
            return false;
        }
        Bytes k = bytesArg(a, "k", Ed25519Keys.PUBLIC_KEY, false);
        long expires = now() + settings.itemTtl().toMillis();
        if (k == null) {
            storeItem(Bep44.immutableTarget(value), new StoredItem(value, null, null, 0, null, expires));
            return true;
        }
        Bytes salt = a.get(Bytes.of("salt")) instanceof Bytes s ? s : null;
        if (salt != null && salt.length() > Bep44.MAX_SALT) {
            send(Krpc.error(q.transaction(), Bep44.SALT_TOO_BIG, "salt (salt field) too big"), from);
            return false;
        }
        Bytes sig = bytesArg(a, "sig", Ed25519Keys.SIGNATURE, true);
        long seq = longArg(a, "seq", true);
        byte[] saltBytes = salt == null ? null : salt.toByteArray();
        if (k.length() != Ed25519Keys.PUBLIC_KEY
                || !Bep44.verify(k.toByteArray(), saltBytes, seq, value, sig.toByteArray())) {
            send(Krpc.error(q.transaction(), Bep44.INVALID_SIGNATURE, "invalid signature"), from);
            return false;
        }
        NodeId target = Bep44.mutableTarget(k.toByteArray(), saltBytes);
        StoredItem old = items.get(target);
        if (old != null && old.expires() > now()) {
            Long cas = longArg(a, "cas", false);
            if (cas != null && cas != old.seq()) {
                send(Krpc.error(q.transaction(), Bep44.CAS_MISMATCH, "CAS mismatch, re-read value and try again"), from);
                return false;
            }
            if (seq < old.seq()) {
                send(Krpc.error(q.transaction(), Bep44.SEQ_TOO_LOW, "sequence number less than current"), from);
                return false;
            }
        }
        storeItem(target, new StoredItem(value, k.toByteArray(), saltBytes, seq, sig.toByteArray(), expires));
        return true;
    }

    private void handleResponse(Krpc.Response r, InetSocketAddress from) {
        Pending p = pending.get(r.transaction());
        if (p == null || !p.to().equals(from)) {
            dropped++; // unsolicited, late, or from an address we did not ask
            return;
        }
        pending.remove(r.transaction());
        p.timeout().cancel(false);
        responsesIn++;
        if (r.ip() != null && r.ip().length() == Contact.COMPACT_PEER) {
            externalAddress = Contact.parsePeer(r.ip().toByteArray());
        }
        if (acceptable(r.sender(), from) && !r.sender().equals(self)) {
            touch(new Contact(r.sender(), from));
        }
        p.future().complete(r);
    }

    private void handleError(Krpc.Error e, InetSocketAddress from) {
        Pending p = pending.get(e.transaction());
        if (p == null || !p.to().equals(from)) {
            dropped++;
            return;
        }
        pending.remove(e.transaction());
        p.timeout().cancel(false);
        responsesIn++;
        p.future().completeExceptionally(new RemoteError(e.code(), e.message()));
    }

    /** The contact is alive: into the routing table; when its bucket is full, ping the stalest entry. */
    private void touch(Contact c) {
        Optional<Contact> stalest = table.seen(c, now());
        stalest.ifPresent(s -> pingStale(s, 0));
    }

    private void pingStale(Contact s, int attempt) {
        if (attempt == 0 && !pinging.add(s.id())) {
            return;
        }
        query(s.address(), s.id(), "ping", Map.of()).whenComplete((r, e) -> {
            if (e != null && table.contains(s.id()) && attempt + 1 < RoutingTable.MAX_FAILURES) {
                pingStale(s, attempt + 1); // one failure so far: one more chance
            } else {
                pinging.remove(s.id());
            }
        });
    }

    // ---- outgoing ----

    private void send(byte[] datagram, InetSocketAddress to) {
        if (channel != null && channel.isActive()) {
            channel.writeAndFlush(new DatagramPacket(Unpooled.wrappedBuffer(datagram), to));
        }
    }

    /** Sends a query (event loop only); the future fails on timeout, error answer or when too many are pending. */
    CompletableFuture<Krpc.Response> query(InetSocketAddress to, NodeId expected, String method, Map<String, Object> args) {
        CompletableFuture<Krpc.Response> f = new CompletableFuture<>();
        if (closed) {
            f.completeExceptionally(new IllegalStateException("DHT closed"));
            return f;
        }
        if (pending.size() >= settings.maxPending()) {
            f.completeExceptionally(new IllegalStateException("too many queries in flight"));
            return f;
        }
        Bytes t;
        do {
            byte[] tb = new byte[4];
            random.nextBytes(tb);
            t = Bytes.of(tb);
        } while (pending.containsKey(t));
        Bytes tx = t;
        ScheduledFuture<?> timeout = loop.schedule(() -> {
            Pending p = pending.remove(tx);
            if (p != null) {
                timeouts++;
                if (expected != null) {
                    table.failed(expected, now());
                }
                p.future().completeExceptionally(new TimeoutException(method + " to " + to + " timed out"));
            }
        }, settings.queryTimeout().toMillis(), TimeUnit.MILLISECONDS);
        pending.put(tx, new Pending(to, expected, f, timeout, method));
        queriesOut++;
        send(Krpc.query(tx, method, self, args, settings.version()), to);
        return f;
    }

    // ---- storage ----

    private void storePeer(NodeId infoHash, InetSocketAddress peer) {
        LinkedHashMap<InetSocketAddress, Long> set = peers.get(infoHash);
        if (set == null) {
            if (peers.size() >= settings.maxInfoHashes()) {
                evictOldest(peers);
            }
            set = new LinkedHashMap<>();
            peers.put(infoHash, set);
        }
        set.remove(peer);
        set.put(peer, now() + settings.peerTtl().toMillis());
        if (set.size() > settings.maxPeersPerHash()) {
            evictOldest(set);
        }
    }

    /** Live peers this node itself stores for {@code infoHash} (it is one of the DHT's nodes too). */
    CompletableFuture<List<InetSocketAddress>> localPeers(NodeId infoHash) {
        return onLoop(() -> {
            List<InetSocketAddress> out = new ArrayList<>();
            LinkedHashMap<InetSocketAddress, Long> set = peers.get(infoHash);
            if (set != null) {
                long now = now();
                set.forEach((a, exp) -> {
                    if (exp > now) {
                        out.add(a);
                    }
                });
            }
            return CompletableFuture.completedFuture(out);
        });
    }

    private List<byte[]> peerValues(NodeId infoHash) {
        LinkedHashMap<InetSocketAddress, Long> set = peers.get(infoHash);
        if (set == null) {
            return List.of();
        }
        long now = now();
        List<byte[]> out = new ArrayList<>();
        List<InetSocketAddress> live = new ArrayList<>();
        set.forEach((a, exp) -> {
            if (exp > now && a.getAddress() instanceof java.net.Inet4Address) {
                live.add(a);
            }
        });
        Collections.shuffle(live, random);
        for (int i = 0; i < live.size() && i < MAX_VALUES_IN_RESPONSE; i++) {
            out.add(Contact.encodePeer(live.get(i)));
        }
        return out;
    }

    private void storeItem(NodeId target, StoredItem item) {
        items.remove(target);
        if (items.size() >= settings.maxItems()) {
            evictOldest(items);
        }
        items.put(target, item);
    }

    /** Stores this node's own verified record; a refusal message when an equal or newer one is held. */
    String storeRecord(ChiralRecord rec) {
        return storeRecord(rec, null);
    }

    /**
     * Stores a verified record sent from {@code source} ({@code null}: this node's own); a refusal message when an
     * equal or newer one is held or when the publisher key or the source address would exceed its byte quota. A
     * record replacing one of the same identity is charged once. When the whole store would exceed its byte bound,
     * the oldest records are evicted.
     */
    String storeRecord(ChiralRecord rec, java.net.InetAddress source) {
        NodeId target = rec.target();
        Bytes identity = rec.identity();
        LinkedHashMap<Bytes, StoredRecord> existing = records.get(target);
        StoredRecord old = existing == null ? null : existing.get(identity);
        if (old != null && old.record().seq() > rec.seq() && old.expires() > now()) {
            return "a newer record (seq " + old.record().seq() + ") is stored";
        }
        Bytes publisher = Bytes.of(rec.publicKey());
        int cost = rec.encode().length + RECORD_OVERHEAD;
        if (source != null) {
            long pub = recordBytesByPublisher.getOrDefault(publisher, 0L) - (old == null ? 0 : old.cost());
            if (pub + cost > settings.maxRecordBytesPerPublisher()) {
                return "this publisher key's records on this node are over their quota of "
                        + settings.maxRecordBytesPerPublisher() + " bytes";
            }
            long src = recordBytesBySource.getOrDefault(source, 0L)
                    - (old != null && source.equals(old.source()) ? old.cost() : 0);
            if (src + cost > settings.maxRecordBytesPerAddress()) {
                return "records sent from " + source.getHostAddress() + " are over their quota of "
                        + settings.maxRecordBytesPerAddress() + " bytes";
            }
        }
        if (old != null) {
            removeRecord(target, identity);
        }
        while (recordBytes + cost > settings.maxRecordBytes() && !records.isEmpty()) {
            NodeId oldestTarget = records.keySet().iterator().next();
            removeRecord(oldestTarget, records.get(oldestTarget).keySet().iterator().next());
        }
        LinkedHashMap<Bytes, StoredRecord> set = records.get(target);
        if (set == null) {
            while (records.size() >= settings.maxRecordKeys() && !records.isEmpty()) {
                NodeId oldestTarget = records.keySet().iterator().next();
                for (Bytes id : List.copyOf(records.get(oldestTarget).keySet())) {
                    removeRecord(oldestTarget, id);
                }
            }
            set = new LinkedHashMap<>();
            records.put(target, set);
        }
        set.put(identity, new StoredRecord(rec, now() + rec.ttlSeconds() * 1000, source, publisher, cost));
        recordBytes += cost;
        recordBytesByPublisher.merge(publisher, (long) cost, Long::sum);
        if (source != null) {
            recordBytesBySource.merge(source, (long) cost, Long::sum);
        }
        if (set.size() > settings.maxRecordsPerKey()) {
            removeRecord(target, set.keySet().iterator().next());
        }
        return null;
    }

    /** Removes one stored record and its charges; drops the key when it was the last. */
    private void removeRecord(NodeId target, Bytes identity) {
        LinkedHashMap<Bytes, StoredRecord> set = records.get(target);
        StoredRecord s = set == null ? null : set.remove(identity);
        if (s == null) {
            return;
        }
        recordBytes -= s.cost();
        recordBytesByPublisher.computeIfPresent(s.publisher(), (k, v) -> v - s.cost() <= 0 ? null : v - s.cost());
        if (s.source() != null) {
            recordBytesBySource.computeIfPresent(s.source(), (k, v) -> v - s.cost() <= 0 ? null : v - s.cost());
        }
        if (set.isEmpty()) {
            records.remove(target);
        }
    }

    /** Bytes the record store is charged for (see {@link #RECORD_OVERHEAD}). */
    CompletableFuture<Long> recordBytes() {
        return onLoop(() -> CompletableFuture.completedFuture(recordBytes));
    }

    private int liveRecords(NodeId target) {
        LinkedHashMap<Bytes, StoredRecord> set = records.get(target);
        if (set == null) {
            return 0;
        }
        long now = now();
        int n = 0;
        for (StoredRecord s : set.values()) {
            if (s.expires() > now) {
                n++;
            }
        }
        return n;
    }

    /** Live records under {@code target} in random order, as many as fit in {@code budget} encoded bytes. */
    private List<Object> recordValues(NodeId target, int budget) {
        LinkedHashMap<Bytes, StoredRecord> set = records.get(target);
        if (set == null || budget <= 0) {
            return List.of();
        }
        long now = now();
        List<ChiralRecord> live = new ArrayList<>();
        for (StoredRecord s : set.values()) {
            if (s.expires() > now) {
                live.add(s.record());
            }
        }
        Collections.shuffle(live, random);
        List<Object> out = new ArrayList<>();
        int bytes = 0;
        for (ChiralRecord r : live) {
            int len = r.encode().length;
            if (out.size() >= MAX_RECORDS_IN_RESPONSE) {
                break;
            }
            if (bytes + len > budget) {
                continue; // a smaller one may still fit
            }
            out.add(r.toWire());
            bytes += len;
        }
        return out;
    }

    private static <K, V> void evictOldest(LinkedHashMap<K, V> map) {
        Iterator<K> it = map.keySet().iterator();
        if (it.hasNext()) {
            it.next();
            it.remove();
        }
    }

    private void maintain() {
        long now = now();
        peers.values().forEach(s -> s.values().removeIf(exp -> exp <= now));
        peers.values().removeIf(Map::isEmpty);
        items.values().removeIf(i -> i.expires() <= now);
        List<Map.Entry<NodeId, Bytes>> expired = new ArrayList<>();
        records.forEach((t, set) -> set.forEach((id, r) -> {
            if (r.expires() <= now) {
                expired.add(Map.entry(t, id));
            }
        }));
        expired.forEach(e -> removeRecord(e.getKey(), e.getValue()));
        if (table.size() == 0) {
            return;
        }
        List<Integer> stale = table.staleBuckets(now - settings.refreshInterval().toMillis());
        int started = 0;
        for (int prefix : stale) {
            if (started++ >= 3) {
                break;
            }
            new Lookup(this, self.randomInBucket(prefix, random), Lookup.Kind.FIND_NODE, null).start(List.of());
        }
        lastRefresh = now;
    }

    // ---- public operations (any thread) ----

    public CompletableFuture<Integer> bootstrap(List<InetSocketAddress> nodes) {
        return onLoop(() -> {
            List<CompletableFuture<Krpc.Response>> asks = new ArrayList<>();
            for (InetSocketAddress a : nodes) {
                if (!a.isUnresolved() && !a.equals(address())) {
                    asks.add(query(a, null, "find_node", Map.of("target", self.bytes())));
                }
            }
            return CompletableFuture.allOf(asks.stream().map(f -> f.exceptionally(e -> null))
                    .toArray(CompletableFuture[]::new))
                    .thenCompose(x -> onLoop(() -> new Lookup(this, self, Lookup.Kind.FIND_NODE, null).start(List.of())))
                    .thenApply(l -> table.size());
        });
    }

    /** Learns a node from outside (a configured contact): pinged, added when it answers. */
    public CompletableFuture<Boolean> ping(InetSocketAddress a) {
        return onLoop(() -> query(a, null, "ping", Map.of()).handle((r, e) -> e == null));
    }

    public CompletableFuture<Lookup.Result> lookup(NodeId target, Lookup.Kind kind, byte[] salt) {
        return onLoop(() -> new Lookup(this, target, kind, salt).start(List.of()));
    }

    /** get_peers lookup, then announce_peer to the closest nodes that gave a token; completes with acceptances. */
    public CompletableFuture<Integer> announce(NodeId infoHash, int port) {
        return onLoop(() -> new Lookup(this, infoHash, Lookup.Kind.GET_PEERS, null).start(List.of())
                .thenCompose(res -> onLoop(() -> storeAt(res, "announce_peer", c -> {
                    Map<String, Object> a = new LinkedHashMap<>();
                    a.put("info_hash", infoHash.bytes());
                    a.put("port", (long) port);
                    a.put("implied_port", 0L);
                    return a;
                }))));
    }

    public CompletableFuture<Integer> putImmutable(byte[] bencodedValue) {
        Object v = decodeValue(bencodedValue);
        NodeId target = Bep44.immutableTarget(bencodedValue);
        return onLoop(() -> new Lookup(this, target, Lookup.Kind.GET, null).start(List.of())
                .thenCompose(res -> onLoop(() -> storeAt(res, "put", c -> new LinkedHashMap<>(Map.of("v", v))))));
    }

    public CompletableFuture<Integer> putMutable(byte[] seed, byte[] salt, byte[] bencodedValue, long seq) {
        Object v = decodeValue(bencodedValue);
        if (salt != null && salt.length > Bep44.MAX_SALT) {
            throw new IllegalArgumentException("salt longer than " + Bep44.MAX_SALT + " bytes");
        }
        byte[] pk = Ed25519Keys.publicKey(seed);
        byte[] sig = Bep44.sign(seed, salt, seq, bencodedValue);
        NodeId target = Bep44.mutableTarget(pk, salt);
        return onLoop(() -> new Lookup(this, target, Lookup.Kind.GET, salt).start(List.of())
                .thenCompose(res -> onLoop(() -> storeAt(res, "put", c -> {
                    Map<String, Object> a = new LinkedHashMap<>();
                    a.put("k", pk);
                    a.put("seq", seq);
                    a.put("sig", sig);
                    if (salt != null && salt.length > 0) {
                        a.put("salt", salt);
                    }
                    a.put("v", v);
                    return a;
                }))));
    }

    /** Stores a signed Chiral record locally and at the k closest nodes. */
    public CompletableFuture<Integer> putRecord(ChiralRecord rec) {
        if (!settings.chiralRecords()) {
            throw new IllegalStateException("the " + settings.network() + " DHT does not carry Chiral records");
        }
        return onLoop(() -> {
            storeRecord(rec);
            return new Lookup(this, rec.target(), Lookup.Kind.RGET, null).start(List.of())
                    .thenCompose(res -> onLoop(() -> storeAt(res, "rput", c -> {
                        Map<String, Object> a = new LinkedHashMap<>();
                        a.put("target", rec.target().bytes());
                        a.put("rec", rec.toWire());
                        return a;
                    })));
        });
    }

    /** Records under {@code key}: this node's own store plus an iterative {@code rget}. */
    public CompletableFuture<Lookup.Result> getRecords(String key) {
        NodeId target = ChiralRecord.targetOf(key);
        return onLoop(() -> {
            List<ChiralRecord> local = new ArrayList<>();
            LinkedHashMap<Bytes, StoredRecord> set = records.get(target);
            if (set != null) {
                long now = now();
                set.values().stream().filter(s -> s.expires() > now).forEach(s -> local.add(s.record()));
            }
            return new Lookup(this, target, Lookup.Kind.RGET, null).start(local);
        });
    }

    private static Object decodeValue(byte[] bencoded) {
        if (bencoded.length > Bep44.MAX_VALUE) {
            throw new IllegalArgumentException("BEP 44 values are at most " + Bep44.MAX_VALUE + " bytes bencoded");
        }
        try {
            return Bencode.decode(bencoded, Bencode.Limits.NETWORK);
        } catch (BencodeException e) {
            throw new IllegalArgumentException("value is not canonical bencode: " + e.getMessage(), e);
        }
    }

    /** Sends a write ({@code announce_peer}, {@code put}, {@code rput}) to the closest responders with tokens. */
    private CompletableFuture<Integer> storeAt(Lookup.Result res, String method,
            java.util.function.Function<Lookup.Responder, Map<String, Object>> args) {
        List<CompletableFuture<Boolean>> acks = new ArrayList<>();
        for (Lookup.Responder c : res.closest()) {
            if (c.token() == null) {
                continue;
            }
            Map<String, Object> a = args.apply(c);
            a.put("token", c.token());
            acks.add(query(c.contact().address(), c.contact().id(), method, a).handle((r, e) -> {
                if (e != null) {
                    LOG.fine(method + " at " + c.contact().address() + " failed: " + e.getMessage());
                }
                return e == null;
            }));
        }
        return CompletableFuture.allOf(acks.toArray(CompletableFuture[]::new))
                .thenApply(x -> (int) acks.stream().filter(CompletableFuture::join).count());
    }

    // ---- introspection (any thread; snapshots taken on the loop) ----

    public record Snapshot(int tableSize, int buckets, int storedPeers, int storedItems, int storedRecords,
            long queriesIn, long queriesOut, long responsesIn, long timeouts, long dropped,
            List<RoutingTable.Entry> entries) {
    }

    public CompletableFuture<Snapshot> snapshot() {
        return onLoop(() -> {
            List<RoutingTable.Entry> entries = new ArrayList<>();
            int buckets = 0;
            for (int p = 0; p < NodeId.BITS; p++) {
                List<RoutingTable.Entry> b = table.bucket(p);
                if (!b.isEmpty()) {
                    buckets++;
                    entries.addAll(b);
                }
            }
            int sp = peers.values().stream().mapToInt(Map::size).sum();
            int sr = records.values().stream().mapToInt(Map::size).sum();
            return CompletableFuture.completedFuture(new Snapshot(table.size(), buckets, sp, items.size(), sr,
                    queriesIn, queriesOut, responsesIn, timeouts, dropped, entries));
        });
    }

    int maxContactsPerResponse() {
        return MAX_CONTACTS_PER_RESPONSE;
    }

    SecureRandom random() {
        return random;
    }

    /** An executor of the shared event loops for timers of components built on this node. */
    java.util.concurrent.ScheduledExecutorService loopGroupNext() {
        return group.next();
    }
}
