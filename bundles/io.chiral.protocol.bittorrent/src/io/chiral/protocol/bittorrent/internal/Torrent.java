package io.chiral.protocol.bittorrent.internal;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

import io.chiral.api.FileId;
import io.chiral.api.PeerInfo;
import io.chiral.api.PeerStatus;
import io.chiral.api.TransferHandle;
import io.chiral.api.TransferProgress;
import io.chiral.api.TransferState;
import io.netty.buffer.ByteBuf;

/**
 * One torrent: downloading (after fetching its metadata over {@code ut_metadata} when it came from a magnet link)
 * and seeding. It keeps its peers, picks blocks rarest-first with end-game ({@link Picker}), verifies every piece's
 * SHA-1 before writing it, bans peers that send bad data (a piece from one peer alone, or, when several peers
 * contributed, the one whose block differs from the good copy once the piece passes: smart-ban), chokes by rate
 * every 10 s with one optimistic unchoke rotated every 30 s, and gives {@code chiral} peers the fast lane: they are
 * always unchoked, filled first and trusted with deeper pipelines; only peers that proved the node id their hello
 * claims (an Ed25519 signature over this connection's nonce, {@link ChiralAuth}) are {@code chiral} peers.
 *
 * <p>All state is guarded by this object's lock; peers call in from their event loops and a one-second tick runs
 * the periodic work.
 */
final class Torrent implements TransferHandle {
    private static final Logger LOG = Logger.getLogger(Torrent.class.getName());
    static final int EXT_METADATA = 1;
    static final int EXT_PEX = 2;
    static final int EXT_CHIRAL = 3;
    /** Bytes of the nonce our {@code chiral} hello sends each connection (the peer signs it to prove its id). */
    static final int NONCE_BYTES = 32;
    private static final java.security.SecureRandom NONCES = new java.security.SecureRandom();
    static final int MAX_CANDIDATES = 2000;
    static final int REQUEST_TIMEOUT_SECONDS = 20;
    static final long MAX_IN_FLIGHT_PIECE_BYTES = 256L << 20;
    /** A peer that said nothing (keep-alives aside) after its handshake is dropped after this long. */
    static final int HANDSHAKE_ONLY_SECONDS = 30;
    /** A peer neither side wants anything from that sent no message (keep-alives aside) this long is dropped. */
    static final int IDLE_SECONDS = 120;
    /**
     * When the torrent is full, a new peer replaces one that said nothing since its handshake for this long, or one
     * that neither side is interested in and that exchanged no data for {@link #NOT_USEFUL_SECONDS}.
     */
    static final int EVICT_SILENT_SECONDS = 2;
    static final int NOT_USEFUL_SECONDS = 10;
    /** A peer whose socket takes none of the blocks it asked for (it does not read) is dropped after this long. */
    static final int NOT_READING_SECONDS = 60;
    /**
     * Proven Chiral peers unchoked outside the upload slots, per torrent: a proof shows a key, and keys are free, so
     * the fast lane is bounded like any other preference.
     */
    static final int MAX_FAST_LANE = 8;

    final Session session;
    private final byte[] infoHash;
    private final String hex;
    private final String displayName;
    private final List<String> trackers = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final Path saveDir;
    private final Path seedFile;
    /** Where the finished data is (its final name), once the part was renamed; null while downloading. */
    private volatile Path doneTop;
    /** What the user opens once complete (the file or the torrent's directory); null until then. */
    private volatile Path output;
    /** Why this finished torrent stopped seeding (a file changed on disk); null while it serves. */
    private volatile String seedingError;
    private volatile Metainfo meta;
    private Picker picker;
    private Storage storage;
    private volatile TransferState state;
    private volatile String error;
    private volatile FileId cid;
    /** Cached Chiral description of the file (chunk hashes), served to Chiral peers that fetch it by CID. */
    private volatile byte[] description;
    private boolean paused;
    private final long startNanos = System.nanoTime();
    private volatile long doneNanos;
    private final CompletableFuture<Path> completion = new CompletableFuture<>();
    private final MessageDigest sha1;

    private final Set<Peer> peers = new LinkedHashSet<>();
    private final Set<InetSocketAddress> connecting = new HashSet<>();
    private final Map<InetSocketAddress, Candidate> candidates = new LinkedHashMap<>();
    private final Set<String> banned = new HashSet<>();
    private final List<String> bannedLabels = new ArrayList<>();
    private final Map<String, String> dropped = new LinkedHashMap<>();
    private final Map<String, Long> bytesPerSource = new LinkedHashMap<>();
    private final Map<Integer, Map<Integer, String[]>> failedBlocks = new HashMap<>();
    private long resumedBytes;
    private long fetchedBytes;
    private int failedPieces;
    private long uploadedTotal;

    // metadata (magnet)
    private long metadataSize = -1;
    private byte[] metadata;
    private BitSet metadataHave;
    private final Map<Integer, Long> metadataAsked = new HashMap<>();

    private final List<ChiralSource> chiralSources = new ArrayList<>();
    private final Map<ChiralSource, Set<Picker.Block>> chiralAsked = new HashMap<>();
    private ScheduledFuture<?> ticker;
    private long ticks;
    private Peer optimistic;
    private long nextAnnounceTick;
    private int announceFailures;
    private int emptyAnnounces;
    private long nextDhtTick;
    private boolean dirty;
    private boolean stopped;

    // what the torrent tried to find sources, for its status and its failure when none is usable (item: source timeout)
    /** Peers the user gave (--from, a magnet's x.pe): kept in the resume state, retried for ever. */
    private final Set<InetSocketAddress> given = new LinkedHashSet<>();
    static final int MAX_GIVEN = 64;
    private final Set<String> trackersTried = new HashSet<>();
    private final Set<String> trackersFailed = new HashSet<>();
    private long dhtLookups;
    private long dhtNodesAsked;
    /** How long the torrent may go without a usable source before it fails; 0 = for ever. */
    private volatile long sourceTimeoutNanos;
    /** Since when no source was usable (System.nanoTime()), 0 while one is. */
    private long unusableSinceNanos;

    private record Candidate(InetSocketAddress address, String source, int failures, long notBeforeTick) {
    }

    /**
     * A torrent to run; {@code meta} is null for a magnet link until its metadata arrives. {@code seedFile}, when
     * given, is the complete stored file a single-file torrent serves (nothing is written then). {@code doneTop},
     * when given, is where a finished download's data is (its final name, read-only); otherwise the torrent writes
     * to its part file or directory in {@code saveDir} (see {@link Storage#partTop}).
     */
    Torrent(Session session, byte[] infoHash, String displayName, Metainfo meta, List<String> trackers, Path saveDir,
            Path seedFile, Path doneTop) {
        this.session = session;
        this.infoHash = infoHash.clone();
        this.hex = HexFormat.of().formatHex(infoHash);
        this.displayName = displayName;
        this.trackers.addAll(trackers);
        this.saveDir = saveDir;
        this.seedFile = seedFile;
        this.doneTop = doneTop;
        try {
            this.sha1 = MessageDigest.getInstance("SHA-1");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        this.state = TransferState.RESOLVING;
        this.sourceTimeoutNanos = TimeUnit.SECONDS.toNanos(Math.max(0, session.sourceTimeoutSeconds()));
        if (meta != null) {
            init(meta);
        }
    }

    // ---- identity ----

    byte[] infoHash() {
        return infoHash.clone();
    }

    String hex() {
        return hex;
    }

    Metainfo meta() {
        return meta;
    }

    List<String> trackers() {
        List<String> all = new ArrayList<>(trackers);
        Metainfo m = meta;
        if (m != null) {
            for (List<String> tier : m.trackers()) {
                for (String t : tier) {
                    if (!all.contains(t)) {
                        all.add(t);
                    }
                }
            }
        }
        return all;
    }

    /** Adds trackers (a file shared again with more {@code --tracker}s) and announces to them now. */
    synchronized void addTrackers(List<String> more) {
        boolean added = false;
        for (String t : more) {
            if (!trackers.contains(t)) {
                trackers.add(t);
                added = true;
            }
        }
        if (added) {
            nextAnnounceTick = ticks;
            dirty = true;
        }
    }

    /** No tracker answered: try again in a while (15 s, doubling up to 30 min). */
    synchronized void announceFailed() {
        announceFailures = Math.min(announceFailures + 1, 7);
        nextAnnounceTick = Math.min(nextAnnounceTick, ticks + (15L << (announceFailures - 1)));
    }

    Path saveDir() {
        return saveDir;
    }

    Path seedFile() {
        return seedFile;
    }

    /** The final name the finished data was moved to (kept in the resume record), or null while downloading. */
    Path doneTop() {
        return doneTop;
    }

    /** Why this finished torrent stopped seeding (one of its files changed on disk), or null. */
    String seedingError() {
        return seedingError;
    }

    PeerWire.Handshake localHandshake() {
        return PeerWire.Handshake.of(infoHash, session.peerId(), true, true, false);
    }

    PeerWire.Limits limits() {
        Metainfo m = meta;
        return m == null ? PeerWire.Limits.DEFAULT : PeerWire.Limits.DEFAULT.withPieceCount(m.pieceCount());
    }

    synchronized BitSet have() {
        return picker == null ? new BitSet() : picker.have();
    }

    synchronized boolean isPaused() {
        return paused;
    }

    synchronized boolean complete() {
        return picker != null && picker.complete();
    }

    /** The file or directory the finished torrent's data is in under its final name; null until it is complete. */
    Path top() {
        return output;
    }

    /** Whether every file of the torrent is at its place with the right size (before hashing them all). */
    synchronized boolean sizesMatch() {
        return storage != null && storage.sizesMatch();
    }

    /** Closes the files of a torrent that never started (a probe of data found on disk). */
    synchronized void discard() {
        if (storage != null) {
            storage.close();
        }
    }

    // ---- life cycle ----

    private void init(Metainfo m) {
        meta = m;
        int maxPartial = (int) Math.max(4, Math.min(1024, MAX_IN_FLIGHT_PIECE_BYTES / m.pieceLength()));
        // rarest-first breaks ties at random for every candidate piece: a fast generator, seeded securely
        picker = new Picker(m, new java.util.Random(session.random().nextLong()), maxPartial);
        if (seedFile != null) {
            storage = Storage.ofFile(m, seedFile);
        } else if (doneTop != null) {
            storage = new Storage(m, doneTop, false);
        } else {
            // nothing unverified under the final name: a part file (or directory) renamed when complete
            storage = new Storage(m, Storage.partTop(m, saveDir), true);
        }
    }

    /**
     * Marks pieces found on disk: {@code trusted} ones without reading them (a stored file we created the torrent
     * from), otherwise each is read back and hashed; only matching pieces count.
     */
    synchronized int loadPieces(BitSet claimed, boolean trusted) {
        if (picker == null || (!trusted && !storage.anyFileExists())) {
            return 0;
        }
        int n = 0;
        for (int i = claimed.nextSetBit(0); i >= 0 && i < picker.pieceCount(); i = claimed.nextSetBit(i + 1)) {
            if (trusted || storage.verify(i, sha1)) {
                picker.haveFromDisk(i);
                resumedBytes += meta.pieceSize(i);
                n++;
            }
        }
        return n;
    }

    /** Starts the tick, the tracker announce, the DHT lookup and the connections to {@code peers}. */
    synchronized void start(List<InetSocketAddress> initialPeers, boolean startPaused) {
        paused = startPaused;
        if (picker != null && picker.complete()) {
            // every piece verified: in its final place already, or still in the part (stopped before the rename)
            if (moveIntoPlace()) {
                state = TransferState.COMPLETED;
                doneNanos = System.nanoTime();
                completion.complete(output);
            }
        } else {
            state = paused ? TransferState.PAUSED : meta == null ? TransferState.RESOLVING : TransferState.DOWNLOADING;
        }
        addPeers(initialPeers, "given");
        ticker = session.group().next().scheduleAtFixedRate(this::tickSafely, 0, 1000, TimeUnit.MILLISECONDS);
    }

    /** Stops everything (node shutdown or bundle stop); the torrent can be loaded again later. */
    void stop() {
        List<Peer> all;
        synchronized (this) {
            if (stopped) {
                return;
            }
            stopped = true;
            if (ticker != null) {
                ticker.cancel(false);
            }
            all = new ArrayList<>(peers);
            for (ChiralSource c : chiralSources) {
                c.source.close();
            }
            chiralSources.clear();
        }
        if (!trackers().isEmpty() && meta != null && !paused) {
            session.announce(this, Trackers.Event.STOPPED, trackers());
        }
        for (Peer p : all) {
            p.close("torrent stopped");
        }
        synchronized (this) {
            if (storage != null) {
                storage.close();
            }
            if (!completion.isDone()) {
                completion.completeExceptionally(new IllegalStateException("the BitTorrent transport stopped"));
            }
        }
    }

    // ---- TransferHandle ----

    @Override
    public FileId fileId() {
        return cid;
    }

    void fileId(FileId id) {
        cid = id;
        description = null;
    }

    @Override
    public String id() {
        return hex;
    }

    @Override
    public synchronized TransferProgress progress() {
        Metainfo m = meta;
        long total = m == null ? -1 : m.totalLength();
        long verified = 0;
        int have = 0;
        if (picker != null) {
            have = picker.haveCount();
            verified = (long) have * m.pieceLength();
            if (picker.has(m.pieceCount() - 1)) {
                verified -= m.pieceLength() - m.pieceSize(m.pieceCount() - 1);
            }
        }
        double elapsed = ((doneNanos != 0 ? doneNanos : System.nanoTime()) - startNanos) / 1e9;
        // the output is named only once the verified data is under its final name (never the part, never a partial file)
        Path out = output;
        return new TransferProgress(state, name(), total, verified, resumedBytes, fetchedBytes,
                m == null ? -1 : m.pieceCount(), have, failedPieces, Map.copyOf(bytesPerSource),
                List.copyOf(bannedLabels), Map.copyOf(dropped), elapsed, out == null ? null : out.toString(),
                error != null ? error : seedingError);
    }

    String name() {
        Metainfo m = meta;
        return m != null ? m.name() : displayName != null ? displayName : hex;
    }

    @Override
    public synchronized void pause() {
        if (state.isFinal() || paused) {
            return;
        }
        paused = true;
        state = TransferState.PAUSED;
        for (Peer p : new ArrayList<>(peers)) {
            p.close("paused");
        }
        dirty = true;
    }

    @Override
    public synchronized void resume() {
        if (!paused) {
            return;
        }
        paused = false;
        state = meta == null ? TransferState.RESOLVING : complete() ? TransferState.COMPLETED : TransferState.DOWNLOADING;
        nextAnnounceTick = ticks;
        nextDhtTick = ticks;
        candidates.replaceAll((a, c) -> new Candidate(a, c.source(), 0, 0));
        unusableSinceNanos = 0;
        dirty = true;
    }

    @Override
    public void cancel() {
        synchronized (this) {
            if (state.isFinal()) {
                return;
            }
            state = TransferState.CANCELLED;
            error = "cancelled";
        }
        stop();
        session.changed(this);
    }

    @Override
    public CompletionStage<Path> completion() {
        return completion;
    }

    synchronized List<PeerStatus> peerStatus() {
        List<PeerStatus> out = new ArrayList<>();
        int count = meta == null ? 0 : meta.pieceCount();
        for (Peer p : peers) {
            if (!p.handshaken) {
                continue;
            }
            Set<String> flags = new TreeSet<>();
            if (p.chiral != null) {
                flags.add("chiral");
            }
            if (p.seed || (count > 0 && p.has.cardinality() >= count)) {
                flags.add("seed");
            }
            if (p.incoming) {
                flags.add("incoming");
            }
            if (p.peerChoking) {
                flags.add("choked");
            }
            if (p.amChoking) {
                flags.add("choking");
            }
            if (p.peerInterested) {
                flags.add("interested");
            }
            if (p == optimistic) {
                flags.add("optimistic");
            }
            double progress = p.seed ? 1.0 : count == 0 ? 0 : Math.min(1.0, p.has.cardinality() / (double) count);
            out.add(new PeerStatus(new PeerInfo("bittorrent", p.label(), p.chiral == null ? null : p.chiral.chiralPeerId(),
                    p.clientName()), flags, p.downloadRate, p.uploadRate, p.downloaded, p.uploaded, progress));
        }
        return out;
    }

    // ---- peers ----

    /** Adds peer addresses learned from {@code source} (tracker, DHT, PEX, a magnet's {@code x.pe}, the user). */
    synchronized void addPeers(List<InetSocketAddress> found, String source) {
        for (InetSocketAddress a : found) {
            if (candidates.size() >= MAX_CANDIDATES) {
                break;
            }
            if (a.getPort() == 0 || a.isUnresolved() || isSelf(a) || banned.contains(addressKey(a))) {
                continue;
            }
            candidates.putIfAbsent(a, new Candidate(a, source, 0, 0));
            if (source.equals("given") && given.size() < MAX_GIVEN && given.add(a)) {
                dirty = true;
            }
        }
    }

    private boolean isSelf(InetSocketAddress a) {
        return a.getPort() == session.listenPort()
                && (a.getAddress().isLoopbackAddress() || a.getAddress().isAnyLocalAddress());
    }

    private static String addressKey(InetSocketAddress a) {
        // many peers share 127.0.0.1 in tests and on one machine: ban the endpoint there, the host elsewhere
        return a.getAddress().isLoopbackAddress() ? a.getAddress().getHostAddress() + ":" + a.getPort()
                : a.getAddress().getHostAddress();
    }

    synchronized void connectFailed(InetSocketAddress a, String why) {
        connecting.remove(a);
        Candidate c = candidates.get(a);
        if (c != null) {
            if (given.contains(a)) {
                // a peer the user named: tried again for ever, at most every 5 min
                candidates.put(a, new Candidate(a, c.source(), Math.min(c.failures() + 1, 5),
                        ticks + Math.min(300, 10L << c.failures())));
                dropped.put("bittorrent://" + a.getAddress().getHostAddress() + ":" + a.getPort(), why);
            } else if (c.failures() >= 4) {
                candidates.remove(a);
                dropped.put("bittorrent://" + a.getAddress().getHostAddress() + ":" + a.getPort(), why);
            } else {
                candidates.put(a, new Candidate(a, c.source(), c.failures() + 1, ticks + (10L << c.failures())));
            }
        }
    }

    synchronized void onHandshake(Peer p) {
        if (p.remote != null) {
            connecting.remove(p.remote);
        }
        String idKey = "id:" + HexFormat.of().formatHex(p.peerId);
        if (stopped || state == TransferState.CANCELLED || state == TransferState.FAILED || seedingError != null
                || (paused && !p.incoming)) {
            p.close("not running");
            return;
        }
        if (paused) {
            p.close("paused");
            return;
        }
        if (Arrays.equals(p.peerId, session.peerId())) {
            p.close("connected to ourselves");
            return;
        }
        if (banned.contains(idKey) || (p.remote != null && banned.contains(addressKey(p.remote)))) {
            p.close("banned");
            return;
        }
        for (Peer q : peers) {
            if (Arrays.equals(q.peerId, p.peerId)) {
                p.close("already connected to this peer");
                return;
            }
        }
        if (peers.size() >= session.maxPeersPerTorrent()) {
            Peer victim = leastUseful(System.nanoTime());
            if (victim == null) {
                p.close("too many peers");
                return;
            }
            // libtorrent-like: a full torrent makes room for a newcomer by dropping a peer that is of no use to anyone
            LOG.fine(() -> "torrent " + name() + ": " + victim.label() + " makes room for " + p.label());
            detach(victim);
            victim.close("replaced by a new peer (of no use: idle or not interested)");
        }
        peers.add(p);
        if (!p.incoming && p.remote != null) {
            Candidate c = candidates.get(p.remote);
            if (c != null) {
                candidates.put(p.remote, new Candidate(p.remote, c.source(), 0, 0));
            }
        }
        // our pieces first (BEP 3: the bitfield is the first message), then the extended handshake
        if (picker != null && picker.haveCount() > 0) {
            if (p.fast && picker.complete()) {
                p.send(new PeerWire.HaveAll());
            } else {
                p.send(new PeerWire.Bitfield(bitfieldBytes(picker.have(), picker.pieceCount())));
            }
        } else if (p.fast) {
            p.send(new PeerWire.HaveNone());
        }
        if (p.extensions) {
            Map<String, Integer> m = new LinkedHashMap<>();
            m.put(Extension.UT_METADATA, EXT_METADATA);
            m.put(Extension.UT_PEX, EXT_PEX);
            if (session.chiralHello() != null) {
                m.put(Extension.CHIRAL, EXT_CHIRAL);
            }
            long size = meta == null ? -1 : meta.infoBytes().length;
            p.send(new PeerWire.Extended(0, Extension.encodeHandshake(new Extension.Handshake(m, session.clientName(),
                    session.listenPort(), Peer.MAX_QUEUED_REQUESTS, size))));
        }
        p.flush();
    }

    static byte[] bitfieldBytes(BitSet have, int pieces) {
        byte[] b = new byte[PeerWire.bitfieldLength(pieces)];
        for (int i = have.nextSetBit(0); i >= 0 && i < pieces; i = have.nextSetBit(i + 1)) {
            b[i >>> 3] |= (byte) (0x80 >>> (i & 7));
        }
        return b;
    }

    synchronized void onClose(Peer p) {
        if (p.remote != null) {
            connecting.remove(p.remote);
        }
        detach(p);
    }

    /**
     * The peer the torrent can best do without when it is full, or null when every peer is of use: one that sent
     * nothing since its handshake for {@link #EVICT_SILENT_SECONDS} (the longest silent first), else one that
     * neither side is interested in and that exchanged no data for {@link #NOT_USEFUL_SECONDS}.
     */
    private Peer leastUseful(long now) {
        Peer best = null;
        boolean bestSilent = false;
        for (Peer q : peers) {
            boolean silent = !q.spoke && now - q.handshakeNanos > TimeUnit.SECONDS.toNanos(EVICT_SILENT_SECONDS);
            // no data either way for a while, and either nobody wants anything or each side chokes the other (saying
            // "interested" costs nothing: it does not keep a slot)
            boolean useless = q.outstanding.isEmpty() && q.uploadQueue.isEmpty()
                    && now - q.lastUsefulNanos > TimeUnit.SECONDS.toNanos(NOT_USEFUL_SECONDS)
                    && ((!q.amInterested && !q.peerInterested) || (q.amChoking && q.peerChoking));
            if (!silent && !useless) {
                continue;
            }
            if (best == null || (silent && !bestSilent)
                    || (silent == bestSilent && q.lastUsefulNanos < best.lastUsefulNanos)) {
                best = q;
                bestSilent = silent;
            }
        }
        return best;
    }

    /** Forgets a peer that is closing: its requests go back to the picker, its pieces leave the availability. */
    private void detach(Peer p) {
        if (!peers.remove(p)) {
            return;
        }
        for (Picker.Block b : p.outstanding) {
            if (picker != null) {
                picker.abandon(b);
            }
        }
        p.outstanding.clear();
        if (picker != null && p.gotPieces) {
            picker.removePeer(p.has, p.seed);
        }
        
        if (p == optimistic) {
            optimistic = null;
        }
    }

    /** Drops and bans a peer that broke the protocol or sent bad data. */
    synchronized void ban(Peer p, String why) {
        if (p.peerId != null) {
            banned.add("id:" + HexFormat.of().formatHex(p.peerId));
        }
        if (p.remote != null) {
            banned.add(addressKey(p.remote));
            InetSocketAddress l = p.listenAddress();
            if (l != null) {
                banned.add(addressKey(l));
                candidates.remove(l);
                given.remove(l); // not tried again after a restart either
            }
        }
        String label = "bittorrent://" + p.label();
        if (!bannedLabels.contains(label)) {
            bannedLabels.add(label);
            LOG.warning("torrent " + name() + ": banned " + label + " (" + p.clientName() + "): " + why);
        }
        dropped.put(label, "banned: " + why);
        p.close("banned: " + why);
    }

    // ---- messages ----

    synchronized void onMessage(Peer p, PeerWire.Message m) throws TorrentException {
        if (!peers.contains(p)) {
            return;
        }
        if (!(m instanceof PeerWire.KeepAlive)) {
            p.spoke = true;
            p.lastMessageNanos = System.nanoTime();
            // data, or a request we may serve: "interested" or a request while choked costs a peer nothing
            if (m instanceof PeerWire.Piece || (m instanceof PeerWire.Request && !p.amChoking)
                    || (m instanceof PeerWire.Extended e && e.extId() == EXT_METADATA)) {
                p.lastUsefulNanos = p.lastMessageNanos;
            }
        }
        switch (m) {
            case PeerWire.KeepAlive k -> {
            }
            case PeerWire.Bitfield bf -> onPieces(p, bf, false);
            case PeerWire.HaveAll h -> onPieces(p, null, true);
            case PeerWire.HaveNone h -> onPieces(p, null, false);
            case PeerWire.Have h -> onHave(p, h.index());
            case PeerWire.Choke c -> {
                p.peerChoking = true;
                if (!p.fast) {
                    abandonAll(p);
                }
            }
            case PeerWire.Unchoke u -> {
                p.peerChoking = false;
                fill(p);
            }
            case PeerWire.Interested i -> {
                p.peerInterested = true;
                if (p.amChoking && unchokedCount() < session.uploadSlots() + 1 && !paused) {
                    unchoke(p);
                }
            }
            case PeerWire.NotInterested n -> p.peerInterested = false;
            case PeerWire.Request r -> onRequest(p, r);
            case PeerWire.Piece pc -> onPiece(p, pc);
            case PeerWire.Cancel c -> p.uploadQueue.remove(new PeerWire.Request(c.index(), c.begin(), c.length()));
            case PeerWire.Reject r -> {
                Picker.Block b = new Picker.Block(r.index(), r.begin(), r.length());
                if (p.outstanding.remove(b) && picker != null) {
                    picker.abandon(b);
                }
                if (!p.peerChoking) {
                    fill(p);
                }
            }
            case PeerWire.AllowedFast a -> {
                if (p.allowedFast.size() < 64) {
                    p.allowedFast.add(a.index());
                }
            }
            case PeerWire.Extended e -> onExtended(p, e);
            case PeerWire.Unknown u -> throw new TorrentException("message id " + u.id() + " is not part of the protocol");
            default -> {
                // Port, Suggest: nothing to do
            }
        }
    }

    private void onPieces(Peer p, PeerWire.Bitfield bf, boolean all) throws TorrentException {
        if (p.gotPieces && bf != null) {
            // a late bitfield (aria2 sends one after its first pieces): what it adds counts like have messages
            if (meta != null && bf.length() != PeerWire.bitfieldLength(meta.pieceCount())) {
                throw new TorrentException("bitfield of " + bf.length() + " bytes for " + meta.pieceCount() + " pieces");
            }
            for (int i = 0; i < bf.length() * 8; i++) {
                if (bf.has(i)) {
                    onHave(p, i);
                }
            }
            return;
        }
        if (p.gotPieces) {
            throw new TorrentException("have-all / have-none after the peer's pieces were known");
        }
        p.gotPieces = true;
        if (all) {
            p.seed = true;
        } else if (bf != null) {
            int bits = bf.length() * 8;
            if (meta != null && bf.length() != PeerWire.bitfieldLength(meta.pieceCount())) {
                throw new TorrentException("bitfield of " + bf.length() + " bytes for " + meta.pieceCount() + " pieces");
            }
            for (int i = 0; i < bits; i++) {
                if (bf.has(i)) {
                    if (meta != null && i >= meta.pieceCount()) {
                        throw new TorrentException("bitfield sets spare bits");
                    }
                    p.has.set(i);
                }
            }
            if (meta != null && p.has.cardinality() == meta.pieceCount()) {
                p.seed = true;
                p.has.clear();
            }
        }
        if (picker != null) {
            picker.addPeer(p.has, p.seed);
        }
        updateInterest(p);
    }

    private void onHave(Peer p, int index) throws TorrentException {
        if (meta != null && index >= meta.pieceCount()) {
            throw new TorrentException("have of piece " + index + " of " + meta.pieceCount());
        }
        if (meta == null && index >= Metainfo.MAX_TOTAL_LENGTH / (16 * 1024)) {
            throw new TorrentException("have of piece " + index);
        }
        if (p.seed || p.has.get(index)) {
            return;
        }
        if (!p.gotPieces) {
            p.gotPieces = true;
            if (picker != null) {
                picker.addPeer(p.has, false);
            }
        }
        p.has.set(index);
        if (picker != null) {
            picker.peerHas(index);
            if (p.has.cardinality() == meta.pieceCount()) {
                picker.removePeer(p.has, false);
                p.has.clear();
                p.seed = true;
                picker.addPeer(p.has, true);
            }
        }
        updateInterest(p);
    }

    private void updateInterest(Peer p) {
        boolean want = false;
        if (picker != null && !picker.complete() && !paused) {
            if (p.seed) {
                want = true;
            } else {
                BitSet missing = (BitSet) p.has.clone();
                missing.andNot(picker.have());
                want = !missing.isEmpty();
            }
        }
        if (want != p.amInterested) {
            p.amInterested = want;
            p.send(want ? new PeerWire.Interested() : new PeerWire.NotInterested());
            p.flush();
        }
        if (want && !p.peerChoking) {
            fill(p);
        }
    }

    private void abandonAll(Peer p) {
        if (picker != null) {
            for (Picker.Block b : p.outstanding) {
                picker.abandon(b);
            }
        }
        p.outstanding.clear();
    }

    /** Sends requests to {@code p} until its pipeline is full. */
    private void fill(Peer p) {
        if (picker == null || paused || picker.complete() || p.peerChoking || !p.amInterested) {
            return;
        }
        // the fast lane: a Chiral peer gets twice the pipeline, never beyond what it said it accepts (reqq)
        int depth = p.chiral != null ? Math.min(2 * p.maxRequests, p.reqq()) : p.maxRequests;
        int n = depth - p.outstanding.size();
        if (n <= 0 || (n < depth / 4 && !p.outstanding.isEmpty())) {
            return;
        }
        List<Picker.Block> blocks = picker.pick(p.seed ? null : p.has, n, p.outstanding);
        if (blocks.isEmpty()) {
            return;
        }
        if (p.outstanding.isEmpty()) {
            p.lastBlockNanos = System.nanoTime();
        }
        for (Picker.Block b : blocks) {
            p.outstanding.add(b);
            p.send(new PeerWire.Request(b.piece(), b.begin(), b.length()));
        }
        p.flush();
    }

    private void onRequest(Peer p, PeerWire.Request r) throws TorrentException {
        if (meta == null || !picker.has(r.index())) {
            if (p.fast) {
                p.send(new PeerWire.Reject(r.index(), r.begin(), r.length()));
                p.flush();
            }
            return;
        }
        if (r.begin() + (long) r.length() > meta.pieceSize(r.index())) {
            throw new TorrentException("request past the end of piece " + r.index());
        }
        if (p.amChoking) {
            if (p.fast) {
                p.send(new PeerWire.Reject(r.index(), r.begin(), r.length()));
                p.flush();
            }
            return;
        }
        if (!p.uploadQueue.isEmpty() || !p.channel.isWritable() || !session.uploadRoom()) {
            if (p.uploadQueue.size() >= 2 * Peer.MAX_QUEUED_REQUESTS) {
                throw new TorrentException("more than " + 2 * Peer.MAX_QUEUED_REQUESTS + " requests queued (we accept "
                        + Peer.MAX_QUEUED_REQUESTS + ")");
            }
            p.uploadQueue.add(r);
            return;
        }
        serve(p, r);
        p.flush();
    }

    private void serve(Peer p, PeerWire.Request r) {
        if (seedingError != null) { // stopped seeding a changed file: requests still queued get nothing
            if (p.fast) {
                p.send(new PeerWire.Reject(r.index(), r.begin(), r.length()));
            }
            return;
        }
        ByteBuf data;
        try {
            data = storage.read(r.index(), r.begin(), r.length(), p.channel.alloc());
        } catch (Storage.ChangedException e) {
            if (p.fast) {
                p.send(new PeerWire.Reject(r.index(), r.begin(), r.length()));
            }
            stopSeeding(e.getMessage());
            return;
        } catch (IOException e) {
            LOG.warning("torrent " + name() + ": cannot read piece " + r.index() + ": " + e.getMessage());
            if (p.fast) {
                p.send(new PeerWire.Reject(r.index(), r.begin(), r.length()));
            }
            return;
        }
        p.sendPiece(r.index(), r.begin(), data);
        uploadedTotal += r.length();
    }

    /**
     * A file of this finished torrent changed on disk: no byte more is served (every read of it fails from now on),
     * and the torrent stops (its peers are closed) on an event loop thread, outside the current peer's handler.
     */
    private void stopSeeding(String why) {
        if (seedingError != null) {
            return;
        }
        seedingError = "stopped seeding: " + why;
        LOG.warning("torrent " + name() + ": " + seedingError);
        session.group().next().execute(() -> session.seedingStopped(this));
    }

    /** Serves queued requests while the socket takes more. */
    synchronized void serveQueued(Peer p) {
        boolean any = false;
        while (!p.uploadQueue.isEmpty() && p.channel.isWritable() && !p.amChoking && session.uploadRoom()) {
            serve(p, p.uploadQueue.poll());
            any = true;
        }
        if (any) {
            p.flush();
        }
    }

    private void onPiece(Peer p, PeerWire.Piece pc) throws TorrentException {
        Picker.Block b = new Picker.Block(pc.index(), pc.begin(), pc.length());
        boolean asked = p.outstanding.remove(b);
        if (picker == null) {
            throw new TorrentException("piece before metadata");
        }
        boolean[] unexpected = new boolean[1];
        Picker.Partial done = picker.receive(pc, p, unexpected);
        if (unexpected[0] && !asked) {
            if (++p.badPieces > 20) {
                throw new TorrentException("keeps sending blocks we did not ask for");
            }
            return;
        }
        p.downloaded += pc.length();
        p.lastBlockNanos = System.nanoTime();
        if (picker.stored) {
            bytesPerSource.merge(p.sourceLabel(), (long) pc.length(), Long::sum);
        }
        if (asked) {
            // end-game: whoever else was asked for this block need not send it
            for (Peer q : peers) {
                if (q != p && q.outstanding.remove(b)) {
                    q.send(new PeerWire.Cancel(b.piece(), b.begin(), b.length()));
                    q.flush();
                }
            }
        }
        if (done != null) {
            pieceComplete(done);
        }
        if (peers.contains(p)) {
            fill(p);
        }
    }

    /**
     * A piece has all its blocks: its SHA-1 is checked and it is written on the session's disk threads, so the
     * network threads keep receiving meanwhile; the piece stays in progress (nothing more is asked for it) until
     * {@link #pieceChecked} records the outcome.
     */
    private void pieceComplete(Picker.Partial done) {
        byte[] expected = meta.pieceHash(done.index);
        Storage st = storage;
        session.disk().execute(() -> {
            boolean good;
            String writeError = null;
            try {
                MessageDigest md = MessageDigest.getInstance("SHA-1");
                good = Arrays.equals(md.digest(done.data), expected);
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
            if (good) {
                synchronized (this) {
                    if (stopped) {
                        return; // storage closed: the piece is fetched again next time
                    }
                }
                try {
                    st.writePiece(done.index, done.data);
                } catch (IOException e) {
                    writeError = e.getMessage();
                }
            }
            pieceChecked(done, good, writeError);
        });
    }

    private synchronized void pieceChecked(Picker.Partial done, boolean good, String writeError) {
        if (stopped || picker == null || state.isFinal()) {
            return;
        }
        int index = done.index;
        if (!good) {
            failedPieces++;
            picker.failed(index);
            blameFailed(done);
            for (Peer q : new ArrayList<>(peers)) {
                fill(q);
            }
            return;
        }
        if (writeError != null) {
            fail("cannot write " + name() + ": " + writeError);
            return;
        }
        picker.verified(index);
        fetchedBytes += done.data.length;
        dirty = true;
        smartBan(done);
        for (Peer q : peers) {
            if (q.handshaken) {
                q.send(new PeerWire.Have(index));
                q.flush();
            }
        }
        if (picker.complete()) {
            finish();
        } else {
            for (Peer q : new ArrayList<>(peers)) {
                if (q.amInterested && !q.seed && q.has.get(index)) {
                    updateInterest(q);
                }
            }
        }
    }

    /** A piece failed: one sender alone is banned at once; with several, the blocks are kept for smart-ban. */
    private void blameFailed(Picker.Partial done) {
        Set<Object> senders = new HashSet<>(done.contributors());
        if (senders.size() == 1 && senders.iterator().next() instanceof Peer only) {
            ban(only, "sent piece " + done.index + " that failed its SHA-1 check");
            return;
        }
        if (senders.size() == 1 && senders.iterator().next() instanceof ChiralSource only) {
            dropChiral(only, "its chunks made piece " + done.index + " fail its SHA-1 check");
            return;
        }
        Map<Integer, String[]> record = new HashMap<>();
        for (int b = 0; b < done.blocks(); b++) {
            Picker.Block bl = done.block(b);
            MessageDigest d = newSha1();
            d.update(done.data, bl.begin(), bl.length());
            Object from = done.from[b];
            String who = from instanceof Peer fp ? fp.label() : from == null ? "" : from.toString();
            // no guessing who lied: smart-ban compares these blocks with the good copy once the piece passes
            record.put(b, new String[] {who, HexFormat.of().formatHex(d.digest())});
        }
        if (failedBlocks.size() < 256) {
            failedBlocks.put(done.index, record);
        }
    }

    /** The piece passed after failing before: whoever sent a block that differs from the good copy is banned. */
    private void smartBan(Picker.Partial good) {
        Map<Integer, String[]> record = failedBlocks.remove(good.index);
        if (record == null) {
            return;
        }
        for (Map.Entry<Integer, String[]> e : record.entrySet()) {
            Picker.Block bl = good.block(e.getKey());
            MessageDigest d = newSha1();
            d.update(good.data, bl.begin(), bl.length());
            if (!HexFormat.of().formatHex(d.digest()).equals(e.getValue()[1])) {
                for (Peer q : new ArrayList<>(peers)) {
                    if (q.label().equals(e.getValue()[0])) {
                        ban(q, "sent a bad block of piece " + good.index + " (smart-ban)");
                    }
                }
                banned.add(e.getValue()[0].startsWith("127.") ? e.getValue()[0] : e.getValue()[0].split(":")[0]);
            }
        }
    }

    private static MessageDigest newSha1() {
        try {
            return MessageDigest.getInstance("SHA-1");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private void finish() {
        // VERIFYING until the store has the files (and the CID is known), then COMPLETED
        state = TransferState.VERIFYING;
        doneNanos = System.nanoTime();
        if (!moveIntoPlace()) {
            return;
        }
        for (Peer q : new ArrayList<>(peers)) {
            updateInterest(q);
            if (q.seed) {
                q.close("both complete");
            }
        }
        LOG.info("torrent " + name() + " complete: " + meta.totalLength() + " bytes in "
                + String.format("%.1f", (doneNanos - startNanos) / 1e9) + " s from " + bytesPerSource.size() + " peers");
        dirty = true;
        Path top = output;
        Thread finisher = new Thread(() -> {
            try {
                session.completed(this);
            } finally {
                synchronized (this) {
                    if (state == TransferState.VERIFYING) {
                        state = TransferState.COMPLETED;
                    }
                }
                completion.complete(top);
                session.announce(this, Trackers.Event.COMPLETED, trackers());
            }
        }, "bittorrent-complete-" + hex.substring(0, 8));
        finisher.setDaemon(true);
        finisher.start();
    }

    /**
     * Every piece is verified: the part (file, or directory of a multi-file torrent) gets its zero-length files,
     * is forced to disk and renamed to the torrent's name in the save directory ({@code NAME (1)} … when that name
     * is taken); the resume record names the final place before the rename, so a restart finds the data either way.
     * From then on the files are read-only and sealed (a changed file stops the seeding). Returns false when the
     * torrent failed instead.
     */
    private boolean moveIntoPlace() {
        if (seedFile != null || doneTop != null) {
            output = storage.top();
            seal();
            return true;
        }
        Path part = storage.top();
        try {
            storage.force();
            storage.createEmptyFiles();
        } catch (IOException e) {
            fail("cannot finish " + name() + ": " + e.getMessage());
            return false;
        }
        storage.close();
        Path target = Storage.uniqueTarget(saveDir, meta.name(), !meta.singleFile());
        doneTop = target;
        session.changed(this);
        try {
            if (!meta.singleFile() && !java.nio.file.Files.exists(part)) {
                java.nio.file.Files.createDirectories(part);
            }
            java.nio.file.Files.move(part, target, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            doneTop = null;
            storage = new Storage(meta, part, true);
            session.changed(this);
            fail("cannot move " + part.getFileName() + " into place: " + DiskErrors.describe(target, e));
            return false;
        }
        storage = new Storage(meta, target, false);
        output = target;
        LOG.info("torrent " + name() + ": verified data moved from " + part.getFileName() + " to " + target);
        seal();
        return true;
    }

    private void seal() {
        try {
            storage.seal();
        } catch (IOException e) {
            LOG.warning("torrent " + name() + ": cannot read the attributes of its files: " + e);
        }
    }

    private void fail(String why) {
        if (state.isFinal()) {
            return;
        }
        error = why;
        state = TransferState.FAILED;
        LOG.warning("torrent " + name() + " failed: " + why);
        completion.completeExceptionally(new IOException(why));
        for (Peer q : new ArrayList<>(peers)) {
            q.close(why);
        }
        // keep the verified pieces (the part stays) for a retry; release the files and the tick now
        session.group().next().execute(this::stop);
    }

    // ---- extensions ----

    private void onExtended(Peer p, PeerWire.Extended e) throws TorrentException {
        switch (e.extId()) {
            case 0 -> {
                Extension.Handshake h = Extension.decodeHandshake(e.payload());
                p.extHandshake = h;
                p.remoteMetadataId = h.id(Extension.UT_METADATA);
                p.remotePexId = h.id(Extension.UT_PEX);
                p.remoteChiralId = h.id(Extension.CHIRAL);
                if (h.client() != null) {
                    p.client = h.client();
                }
                if (h.port() > 0) {
                    p.listenPort = h.port();
                }
                if (meta == null && h.metadataSize() > 0 && metadataSize < 0) {
                    metadataSize = h.metadataSize();
                }
                Extension.ChiralHello hello = session.chiralHello();
                if (p.remoteChiralId > 0 && hello != null && p.chiralNonce == null) {
                    // a fresh nonce for this connection: the peer's proof of its own hello must sign it
                    p.chiralNonce = new byte[NONCE_BYTES];
                    NONCES.nextBytes(p.chiralNonce);
                    p.send(new PeerWire.Extended(p.remoteChiralId, Extension.encodeChiral(hello.withNonce(p.chiralNonce))));
                    p.flush();
                }
                p.tick();
            }
            case EXT_METADATA -> onMetadata(p, e.payload());
            case EXT_PEX -> {
                Extension.Pex pex = Extension.decodePex(e.payload());
                addPeers(pex.added(), "pex");
            }
            case EXT_CHIRAL -> {
                switch (Extension.decodeChiral(e.payload())) {
                    case Extension.ChiralHello h -> onChiralHello(p, h);
                    case Extension.ChiralProof proof -> onChiralProof(p, proof);
                    case Extension.FileRequest r -> serveDescription(p, r);
                    default -> {
                        // descriptions are fetched by CID sources (PeerChunkSource), not torrents; unknown types ignored
                    }
                }
            }
            default -> {
                // an id we never assigned: ignore, as BEP 10 asks
            }
        }
    }

    /**
     * A hello claims a Chiral identity, which counts only once proven ({@link #onChiralProof}). When it carries a
     * nonce and this node has a key, we prove ours: once per connection, later hellos are ignored.
     */
    private void onChiralHello(Peer p, Extension.ChiralHello h) {
        if (p.chiralClaim != null) {
            return;
        }
        p.chiralClaim = h;
        LOG.fine(() -> "torrent " + name() + ": " + p.label() + " says it is Chiral node " + h.chiralPeerId());
        Extension.ChiralHello ours = session.chiralHello();
        if (h.nonce() != null && ours != null && p.remoteChiralId > 0 && !p.chiralProofSent) {
            byte[] sig = session.chiralSign(ChiralAuth.proofMessage(infoHash,
                    java.util.HexFormat.of().parseHex(ours.chiralPeerId()), h.nonce().toByteArray()));
            if (sig != null) {
                p.chiralProofSent = true;
                p.send(new PeerWire.Extended(p.remoteChiralId,
                        Extension.encodeChiral(new Extension.ChiralProof(io.chiral.bencode.Bytes.of(sig)))));
                p.flush();
            }
        }
    }

    /**
     * The proof of the identity a hello claimed: a signature over our nonce of this connection. Verified, the peer
     * gets the Chiral preference (unchoked outside the upload slots, the deeper pipeline); a signature that does
     * not verify is a lie, the peer is dropped and banned. A proof before a hello, or when we asked for none, is
     * ignored.
     */
    private void onChiralProof(Peer p, Extension.ChiralProof proof) throws TorrentException {
        if (p.chiral != null || p.chiralClaim == null || p.chiralNonce == null) {
            return;
        }
        if (!ChiralAuth.verify(p.chiralClaim.chiralPeerId(), infoHash, p.chiralNonce, proof.signature().toByteArray())) {
            throw new TorrentException("its proof of Chiral node " + p.chiralClaim.chiralPeerId() + " does not verify");
        }
        p.chiral = p.chiralClaim;
        LOG.fine(() -> "torrent " + name() + ": " + p.label() + " proved it is Chiral node " + p.chiral.chiralPeerId());
    }

    /**
     * A Chiral peer asks for the description (chunk SHA-256s) of the file this torrent is, to fetch it by CID: sent
     * when this is a single-file torrent of a stored file with that CID, refused otherwise or when asked too often.
     */
    private void serveDescription(Peer p, Extension.FileRequest r) {
        if (p.remoteChiralId == 0) {
            return;
        }
        if (description == null && meta != null) {
            description = session.fileDescription(this, r.cid());
        }
        byte[] d = description;
        Extension.ChiralMessage answer;
        if (d == null || cid == null || !cid.hex().equals(r.cid()) || r.piece() >= Extension.metadataPieces(d.length)
                || ++p.descriptionRequestsServed > 4 * Extension.metadataPieces(d.length) + 16) {
            answer = new Extension.FileReject(r.cid(), r.piece());
        } else {
            int from = r.piece() * Extension.METADATA_PIECE;
            answer = new Extension.FileData(r.cid(), r.piece(), d.length, meta.pieceLength(),
                    Arrays.copyOfRange(d, from, Math.min(d.length, from + Extension.METADATA_PIECE)));
        }
        p.send(new PeerWire.Extended(p.remoteChiralId, Extension.encodeChiral(answer)));
        p.flush();
    }

    private void onMetadata(Peer p, byte[] payload) throws TorrentException {
        long size = meta != null ? meta.infoBytes().length : metadataSize;
        Extension.MetadataMessage m = Extension.decodeMetadata(payload, size);
        switch (m) {
            case Extension.MetadataRequest r -> {
                if (p.remoteMetadataId == 0) {
                    return;
                }
                if (meta == null || r.piece() >= Extension.metadataPieces(size)
                        || ++p.metadataRequestsServed > 4 * Extension.metadataPieces(Math.max(1, size)) + 16) {
                    p.send(new PeerWire.Extended(p.remoteMetadataId, Extension.encodeMetadata(
                            new Extension.MetadataReject(r.piece()))));
                } else {
                    byte[] info = meta.infoBytes();
                    int from = r.piece() * Extension.METADATA_PIECE;
                    byte[] data = Arrays.copyOfRange(info, from, Math.min(info.length, from + Extension.METADATA_PIECE));
                    p.send(new PeerWire.Extended(p.remoteMetadataId, Extension.encodeMetadata(
                            new Extension.MetadataData(r.piece(), info.length, data))));
                }
                p.flush();
            }
            case Extension.MetadataData d -> {
                if (meta != null || metadataSize < 0 || d.totalSize() != metadataSize) {
                    return;
                }
                if (metadata == null) {
                    metadata = new byte[(int) metadataSize];
                    metadataHave = new BitSet();
                }
                int pieces = Extension.metadataPieces(metadataSize);
                int expected = d.piece() == pieces - 1 ? (int) (metadataSize - (long) d.piece() * Extension.METADATA_PIECE)
                        : Extension.METADATA_PIECE;
                if (d.piece() >= pieces || d.length() != expected) {
                    throw new TorrentException("metadata piece " + d.piece() + " of " + d.length() + " bytes");
                }
                System.arraycopy(d.data(), 0, metadata, d.piece() * Extension.METADATA_PIECE, d.length());
                metadataHave.set(d.piece());
                metadataAsked.remove(d.piece());
                if (metadataHave.cardinality() == pieces) {
                    metadataComplete(p);
                }
            }
            case Extension.MetadataReject r -> metadataAsked.remove(r.piece());
            default -> {
            }
        }
    }

    private void metadataComplete(Peer last) {
        sha1.reset();
        byte[] digest = sha1.digest(metadata);
        if (!Arrays.equals(digest, infoHash)) {
            LOG.warning("torrent " + hex + ": metadata does not match the info-hash; fetching it again");
            metadata = null;
            metadataHave = null;
            metadataAsked.clear();
            ban(last, "sent metadata that does not match the info-hash");
            return;
        }
        Metainfo m;
        try {
            m = Metainfo.parse(Metainfo.wrapInfo(metadata));
        } catch (TorrentException e) {
            fail("the torrent's metadata is unusable: " + e.getMessage());
            return;
        }
        metadata = null;
        metadataHave = null;
        init(m);
        state = TransferState.DOWNLOADING;
        LOG.info("torrent " + hex + ": metadata received: " + m.name() + ", " + m.totalLength() + " bytes, "
                + m.pieceCount() + " pieces");
        dirty = true;
        session.changed(this);
        for (ChiralSource c : new ArrayList<>(chiralSources)) {
            if (!fits(c)) {
                dropChiral(c, "its file (" + c.file.size() + " bytes) is not this torrent's content");
            } else {
                feedChiral(c);
            }
        }
        for (Peer q : new ArrayList<>(peers)) {
            q.codec.pieceCount(m.pieceCount());
            if (q.has.length() > m.pieceCount()) {
                ban(q, "announced pieces beyond the torrent's " + m.pieceCount());
                continue;
            }
            if (!q.seed && q.has.cardinality() == m.pieceCount()) {
                q.seed = true;
                q.has.clear();
            }
            if (q.gotPieces) {
                picker.addPeer(q.has, q.seed);
            }
            updateInterest(q);
        }
    }

    private void requestMetadata() {
        if (meta != null || metadataSize <= 0) {
            return;
        }
        int pieces = Extension.metadataPieces(metadataSize);
        long now = ticks;
        metadataAsked.values().removeIf(t -> now - t > 10);
        List<Peer> able = peers.stream().filter(q -> q.remoteMetadataId > 0).toList();
        if (able.isEmpty()) {
            return;
        }
        int k = 0;
        for (int i = 0; i < pieces; i++) {
            if ((metadataHave != null && metadataHave.get(i)) || metadataAsked.containsKey(i)) {
                continue;
            }
            Peer q = able.get(k++ % able.size());
            q.send(new PeerWire.Extended(q.remoteMetadataId, Extension.encodeMetadata(new Extension.MetadataRequest(i))));
            q.flush();
            metadataAsked.put(i, now);
        }
    }

    // ---- Chiral providers (dual lookup: info_hash_idx::<btih> -> CID -> providers over HTTP) ----

    /** Adds a Chiral provider of this torrent's content; ignored when it is known already or does not fit. */
    synchronized void addChiralSource(ChiralSource c) {
        if (stopped || chiralSources.stream().anyMatch(x -> x.label.equals(c.label))
                || bannedLabels.contains(c.label) || (meta != null && !fits(c))) {
            c.source.close();
            return;
        }
        chiralSources.add(c);
        chiralAsked.put(c, new HashSet<>());
        LOG.info("torrent " + name() + ": Chiral provider " + c.label + " found through info_hash_idx");
        feedChiral(c);
    }

    synchronized boolean hasChiralSource(String label) {
        return chiralSources.stream().anyMatch(x -> x.label.equals(label));
    }

    private boolean fits(ChiralSource c) {
        return meta.singleFile() && meta.totalLength() == c.file.size();
    }

    private void dropChiral(ChiralSource c, String why) {
        if (c.dropped) {
            return;
        }
        c.dropped = true;
        chiralSources.remove(c);
        Set<Picker.Block> asked = chiralAsked.remove(c);
        if (asked != null && picker != null) {
            asked.forEach(picker::abandon);
        }
        c.source.close();
        dropped.put(c.label, why);
        if (why.contains("SHA")) {
            bannedLabels.add(c.label);
        }
        LOG.warning("torrent " + name() + ": dropped Chiral provider " + c.label + ": " + why);
    }

    /** Asks a Chiral provider for the chunks under the next blocks the picker hands out (two batches in flight). */
    private void feedChiral(ChiralSource c) {
        if (c.dropped || picker == null || paused || picker.complete() || c.inFlight >= 2) {
            return;
        }
        Set<Picker.Block> mine = chiralAsked.get(c);
        int perBatch = Math.max(1, c.file.chunkSize() / PeerWire.BLOCK) * 2;
        List<Picker.Block> blocks = picker.pick(null, perBatch, mine);
        if (blocks.isEmpty()) {
            return;
        }
        mine.addAll(blocks);
        c.inFlight++;
        java.util.TreeMap<Integer, CompletableFuture<java.nio.ByteBuffer>> chunks = new java.util.TreeMap<>();
        for (Picker.Block b : blocks) {
            long from = (long) b.piece() * meta.pieceLength() + b.begin();
            for (int i = c.firstChunk(from); i <= c.lastChunk(from + b.length()); i++) {
                chunks.computeIfAbsent(i, k -> c.source.fetchChunk(k).toCompletableFuture());
            }
        }
        CompletableFuture.allOf(chunks.values().toArray(new CompletableFuture<?>[0])).whenComplete((v, e) ->
                chiralDelivered(c, blocks, chunks, e));
    }

    private synchronized void chiralDelivered(ChiralSource c, List<Picker.Block> blocks,
            Map<Integer, CompletableFuture<java.nio.ByteBuffer>> chunks, Throwable error) {
        c.inFlight--;
        Set<Picker.Block> mine = chiralAsked.get(c);
        if (mine != null) {
            blocks.forEach(mine::remove);
        }
        if (c.dropped || picker == null || stopped) {
            return;
        }
        if (error != null) {
            blocks.forEach(picker::abandon);
            if (++c.failures >= 3) {
                dropChiral(c, "failed: " + error.getMessage());
            }
            return;
        }
        for (Map.Entry<Integer, CompletableFuture<java.nio.ByteBuffer>> e : chunks.entrySet()) {
            if (!c.verify(e.getKey(), e.getValue().join())) {
                blocks.forEach(picker::abandon);
                dropChiral(c, "served chunk " + e.getKey() + " that does not match its SHA-256");
                return;
            }
        }
        boolean[] unexpected = new boolean[1];
        for (Picker.Block b : blocks) {
            byte[] data = new byte[b.length()];
            long from = (long) b.piece() * meta.pieceLength() + b.begin();
            int done = 0;
            while (done < data.length) {
                long at = from + done;
                int chunk = (int) (at / c.file.chunkSize());
                java.nio.ByteBuffer buf = chunks.get(chunk).join().duplicate();
                int off = (int) (at - (long) chunk * c.file.chunkSize());
                int n = Math.min(data.length - done, buf.remaining() - off);
                buf.position(buf.position() + off);
                buf.get(data, done, n);
                done += n;
            }
            Picker.Partial complete = picker.receive(new PeerWire.Piece(b.piece(), b.begin(), data), c, unexpected);
            if (picker.stored) {
                bytesPerSource.merge(c.label, (long) data.length, Long::sum);
            }
            if (complete != null) {
                pieceComplete(complete);
                if (picker.complete() || c.dropped) {
                    return;
                }
            }
        }
        feedChiral(c);
    }

    // ---- periodic work ----

    private void tickSafely() {
        try {
            tick();
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "torrent " + name() + ": " + e, e);
        }
    }

    private void tick() {
        boolean save;
        boolean announce = false;
        boolean dht = false;
        String giveUp = null;
        List<InetSocketAddress> toConnect = new ArrayList<>();
        synchronized (this) {
            if (stopped) {
                return;
            }
            ticks++;
            long now = System.nanoTime();
            for (Peer p : new ArrayList<>(peers)) {
                p.tick();
                String idle = idle(p, now);
                if (p.channel.isWritable()) {
                    p.unwritableSinceNanos = 0;
                } else if (p.unwritableSinceNanos == 0) {
                    p.unwritableSinceNanos = now;
                }
                if (idle == null && p.unwritableSinceNanos != 0
                        && now - Math.max(p.unwritableSinceNanos, p.lastWriteNanos) > TimeUnit.SECONDS.toNanos(NOT_READING_SECONDS)) {
                    idle = "it read none of the blocks it asked for in " + NOT_READING_SECONDS + " s";
                }
                if (idle != null) {
                    detach(p);
                    p.close(idle);
                    continue;
                }
                if (!p.uploadQueue.isEmpty()) {
                    serveQueued(p); // requests that waited for the node's upload bound
                }
                if (!p.outstanding.isEmpty() && now - p.lastBlockNanos > TimeUnit.SECONDS.toNanos(REQUEST_TIMEOUT_SECONDS)) {
                    abandonAll(p);
                    p.close("no block for " + REQUEST_TIMEOUT_SECONDS + " s");
                    dropped.put("bittorrent://" + p.label(), "stalled");
                    continue;
                }
                fill(p);
            }
            for (ChiralSource c : new ArrayList<>(chiralSources)) {
                feedChiral(c);
            }
            if (ticks % 10 == 1) {
                choke();
            }
            if (ticks % 60 == 0) {
                sendPex();
            }
            requestMetadata();
            if (!paused && !state.isFinal() || (state == TransferState.COMPLETED && !paused)) {
                if (!complete()) {
                    int room = session.maxPeersPerTorrent() - peers.size() - connecting.size();
                    Set<InetSocketAddress> connected = new HashSet<>();
                    for (Peer p : peers) {
                        if (p.listenAddress() != null) {
                            connected.add(p.listenAddress());
                        }
                        if (!p.incoming && p.remote != null) {
                            connected.add(p.remote);
                        }
                    }
                    for (Iterator<Candidate> it = candidates.values().iterator(); it.hasNext() && room > 0
                            && toConnect.size() < 8;) {
                        Candidate c = it.next();
                        if (c.notBeforeTick() <= ticks && !connecting.contains(c.address())
                                && !connected.contains(c.address())) {
                            toConnect.add(c.address());
                            connecting.add(c.address());
                            room--;
                        }
                    }
                }
                if (ticks >= nextAnnounceTick && !trackers().isEmpty()) {
                    announce = true;
                    nextAnnounceTick = ticks + 1800;
                }
                if (peers.isEmpty() && chiralSources.isEmpty() && connecting.isEmpty() && !complete()
                        && nextDhtTick > ticks + 10) {
                    nextDhtTick = ticks + 10; // nobody to talk to: look again soon (every 10 s)
                }
                if (ticks >= nextDhtTick) {
                    dht = true;
                    nextDhtTick = ticks + (complete() ? 900 : 300);
                }
            }
            if (!paused && (state == TransferState.RESOLVING || state == TransferState.DOWNLOADING) && !complete()) {
                if (usable(now)) {
                    unusableSinceNanos = 0;
                } else if (unusableSinceNanos == 0) {
                    unusableSinceNanos = now;
                } else if (sourceTimeoutNanos > 0 && now - unusableSinceNanos > sourceTimeoutNanos) {
                    giveUp = "no usable source for " + seconds(sourceTimeoutNanos) + ": " + tried(true)
                            + "; the transfer can be resumed with get again";
                    fail(giveUp);
                    dirty = true;
                }
            } else {
                unusableSinceNanos = 0;
            }
            save = dirty && (ticks % 2 == 0 || giveUp != null);
            if (save) {
                dirty = false;
            }
        }
        if (giveUp != null) {
            session.changed(this);
            stop();
            return;
        }
        for (InetSocketAddress a : toConnect) {
            session.connect(this, a);
        }
        if (announce) {
            session.announce(this, ticks <= 2 ? Trackers.Event.STARTED : Trackers.Event.NONE, trackers());
        }
        if (dht) {
            session.dhtLookup(this);
        }
        if (save) {
            session.changed(this);
        }
    }

    /**
     * Why {@code p} is dropped as idle, or null while it is of use: nothing but keep-alives since its handshake for
     * {@link #HANDSHAKE_ONLY_SECONDS}, or no message for {@link #IDLE_SECONDS} while neither waits for the other
     * (we want its pieces, or it asked for ours and waits for an unchoke).
     */
    private static String idle(Peer p, long now) {
        if (!p.handshaken) {
            return null;
        }
        if (!p.spoke && now - p.handshakeNanos > TimeUnit.SECONDS.toNanos(HANDSHAKE_ONLY_SECONDS)) {
            return "nothing but its handshake for " + HANDSHAKE_ONLY_SECONDS + " s";
        }
        if (now - p.lastMessageNanos > TimeUnit.SECONDS.toNanos(IDLE_SECONDS) && !p.amInterested
                && !(p.peerInterested && p.amChoking) && p.outstanding.isEmpty()) {
            return "idle for " + IDLE_SECONDS + " s";
        }
        return null;
    }

    /**
     * Whether a source may deliver: a Chiral provider, or a connected peer that has pieces we lack (or, before the
     * metadata, that serves it over ut_metadata), or one that has not told yet what it has.
     */
    private boolean usable(long now) {
        if (!chiralSources.isEmpty()) {
            return true;
        }
        for (Peer p : peers) {
            if (!p.handshaken) {
                continue;
            }
            // a peer that has not told yet what it has (or whether it serves the metadata) gets the handshake-only time
            boolean fresh = now - p.handshakeNanos < TimeUnit.SECONDS.toNanos(HANDSHAKE_ONLY_SECONDS);
            if (meta == null) {
                if (p.remoteMetadataId > 0 || (fresh && p.extensions && p.extHandshake == null)) {
                    return true;
                }
            } else if ((p.amInterested && (!p.peerChoking
                    || now - p.lastUsefulNanos < TimeUnit.SECONDS.toNanos(IDLE_SECONDS)))
                    || (fresh && !p.gotPieces && !p.seed)) {
                // a peer with pieces we want counts while it lets us have them (or did lately), not while it chokes us
                return true;
            }
        }
        return false;
    }

    private static String seconds(long nanos) {
        long s = TimeUnit.NANOSECONDS.toSeconds(nanos);
        return s >= 60 && s % 60 == 0 ? s / 60 + " min" : s + " s";
    }

    /** What was tried to find sources: trackers, DHT, peers known, connected and banned (with why, when asked). */
    private String tried(boolean why) {
        int connected = 0;
        for (Peer p : peers) {
            if (p.handshaken) {
                connected++;
            }
        }
        StringBuilder b = new StringBuilder();
        int t = trackers().size();
        if (t == 0) {
            b.append("no trackers");
        } else {
            b.append(trackersTried.size()).append(trackersTried.size() == 1 ? " tracker" : " trackers").append(" tried");
            if (!trackersFailed.isEmpty()) {
                b.append(" (").append(trackersFailed.size()).append(" failed)");
            }
        }
        b.append(", ").append(dhtNodesAsked).append(" DHT nodes asked, ").append(candidates.size())
                .append(candidates.size() == 1 ? " peer" : " peers").append(" known, ").append(connected)
                .append(" connected, ").append(bannedLabels.size()).append(" banned");
        if (why && !bannedLabels.isEmpty()) {
            b.append(" (");
            int n = 0;
            for (String l : bannedLabels) {
                if (n++ == 3) {
                    b.append(", ...");
                    break;
                }
                b.append(n > 1 ? ", " : "").append(l);
                String d = dropped.get(l);
                if (d != null) {
                    b.append(": ").append(d);
                }
            }
            b.append(')');
        }
        return b.toString();
    }

    @Override
    public synchronized String status() {
        if (paused || !(state == TransferState.RESOLVING || state == TransferState.DOWNLOADING)) {
            return null;
        }
        long now = System.nanoTime();
        if (!usable(now)) {
            String s = "waiting for peers: " + tried(false);
            if (sourceTimeoutNanos > 0 && unusableSinceNanos != 0) {
                long left = Math.max(0, sourceTimeoutNanos - (now - unusableSinceNanos));
                s += " (giving up in " + (TimeUnit.NANOSECONDS.toSeconds(left) + 1) + " s)";
            }
            return s;
        }
        if (meta == null) {
            long from = peers.stream().filter(p -> p.remoteMetadataId > 0).count();
            String peersText = from + (from == 1 ? " peer" : " peers");
            if (metadataSize > 0) {
                int have = metadataHave == null ? 0 : metadataHave.cardinality();
                return "fetching metadata: " + have + " of " + Extension.metadataPieces(metadataSize) + " pieces from "
                        + peersText;
            }
            return "fetching metadata from " + peersText;
        }
        return null;
    }

    /** A tracker answered ({@code ok}) or not. */
    synchronized void trackerResult(String url, boolean ok) {
        trackersTried.add(url);
        if (ok) {
            trackersFailed.remove(url);
        } else {
            trackersFailed.add(url);
        }
    }

    /** A DHT lookup of this torrent ended, having queried {@code nodes} nodes. */
    synchronized void dhtLookedUp(int nodes) {
        dhtLookups++;
        dhtNodesAsked += Math.max(0, nodes);
    }

    /** Peers the user gave for this torrent, kept in its resume state. */
    synchronized List<InetSocketAddress> givenPeers() {
        return List.copyOf(given);
    }

    /** How long the torrent may go without a usable source before it fails; {@link java.time.Duration#ZERO} = for ever. */
    void sourceTimeout(java.time.Duration d) {
        sourceTimeoutNanos = d.toNanos();
    }

    /** The DHT lookup or announce reached nobody: repeat it in {@code seconds}. */
    synchronized void lookupAgainIn(int seconds) {
        nextDhtTick = Math.min(nextDhtTick, ticks + seconds);
    }

    /** Called by the tracker client with the tracker's interval. */
    synchronized void announced(int intervalSeconds, int othersFound) {
        announceFailures = 0;
        long interval = Math.max(30, Math.min(3600, intervalSeconds));
        if (othersFound == 0 && !complete()) {
            // a leecher that the tracker knows nobody for (the seeder's own announce may still be on its way)
            // asks again in 15 s, doubling, rather than after the tracker's interval (often 30 min)
            emptyAnnounces = Math.min(emptyAnnounces + 1, 8);
            interval = Math.min(interval, 15L << (emptyAnnounces - 1));
        } else {
            emptyAnnounces = 0;
        }
        nextAnnounceTick = ticks + interval;
    }

    private int unchokedCount() {
        int n = 0;
        for (Peer p : peers) {
            if (!p.amChoking) {
                n++;
            }
        }
        return n;
    }

    private void unchoke(Peer p) {
        p.amChoking = false;
        p.send(new PeerWire.Unchoke());
        p.flush();
    }

    private void choke(Peer p) {
        p.amChoking = true;
        if (p.fast) {
            for (PeerWire.Request r : p.uploadQueue) {
                p.send(new PeerWire.Reject(r.index(), r.begin(), r.length()));
            }
        }
        p.uploadQueue.clear();
        p.send(new PeerWire.Choke());
        p.flush();
    }

    /** Rate-based choking: the fastest interested peers, every Chiral peer, and one optimistic unchoke. */
    private void choke() {
        boolean seeding = picker != null && picker.complete();
        List<Peer> interested = new ArrayList<>();
        for (Peer p : peers) {
            if (p.peerInterested && p.handshaken) {
                interested.add(p);
            }
        }
        interested.sort(Comparator.comparingLong((Peer p) -> seeding ? p.uploadRate : p.downloadRate).reversed());
        Set<Peer> unchoke = new HashSet<>();
        for (Peer p : interested) {
            if (p.chiral != null && unchoke.size() < MAX_FAST_LANE) {
                unchoke.add(p);
            }
        }
        int fastLane = unchoke.size();
        for (Peer p : interested) {
            if (unchoke.size() >= session.uploadSlots() + fastLane) {
                break;
            }
            unchoke.add(p); // a Chiral peer beyond the fast lane competes for the slots like any other
        }
        if (ticks % 30 == 1 || optimistic == null || !peers.contains(optimistic)) {
            List<Peer> rest = interested.stream().filter(p -> !unchoke.contains(p)).toList();
            optimistic = rest.isEmpty() ? null : rest.get(session.random().nextInt(rest.size()));
        }
        if (optimistic != null) {
            unchoke.add(optimistic);
        }
        for (Peer p : peers) {
            if (!p.handshaken) {
                continue;
            }
            if (unchoke.contains(p) && p.amChoking && !paused) {
                unchoke(p);
            } else if (!unchoke.contains(p) && !p.amChoking) {
                choke(p);
            }
        }
    }


    /** BEP 11: tells each PEX-capable peer which listen addresses joined or left since the last message. */
    private void sendPex() {
        Set<InetSocketAddress> now = new LinkedHashSet<>();
        for (Peer p : peers) {
            InetSocketAddress a = p.listenAddress();
            if (a != null && a.getAddress().getAddress().length == 4) {
                now.add(a);
            }
        }
        for (Peer p : peers) {
            if (p.remotePexId == 0) {
                continue;
            }
            List<InetSocketAddress> added = new ArrayList<>();
            for (InetSocketAddress a : now) {
                if (!a.equals(p.listenAddress()) && !p.pexSent.contains(a) && added.size() < 50) {
                    added.add(a);
                }
            }
            List<InetSocketAddress> gone = new ArrayList<>();
            for (InetSocketAddress a : p.pexSent) {
                if (!now.contains(a) && gone.size() < 50) {
                    gone.add(a);
                }
            }
            if (added.isEmpty() && gone.isEmpty()) {
                continue;
            }
            p.pexSent.addAll(added);
            gone.forEach(p.pexSent::remove);
            p.send(new PeerWire.Extended(p.remotePexId, Extension.encodePex(new Extension.Pex(added, null, gone))));
            p.flush();
        }
    }

    /** Bytes uploaded to peers since the torrent started. */
    synchronized long uploaded() {
        return uploadedTotal;
    }

    /** Bytes still missing. */
    synchronized long left() {
        if (meta == null) {
            return 1;
        }
        return Math.max(0, meta.totalLength() - progress().verifiedBytes());
    }

    synchronized int peerCount() {
        return peers.size();
    }
}
