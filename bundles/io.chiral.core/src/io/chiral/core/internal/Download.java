package io.chiral.core.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.logging.Level;
import java.util.logging.Logger;

import io.chiral.api.ChunkSource;
import io.chiral.api.ContentProtocol;
import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.api.PeerInfo;
import io.chiral.api.TransferHandle;
import io.chiral.api.TransferProgress;
import io.chiral.api.TransferState;

/**
 * One download. Asks all its sources for different chunks at once (rarest first, end game at the tail), verifies
 * every chunk against its SHA-256 before writing it to the part file, persists the bitmap of verified chunks so a
 * crash loses nothing verified, and, when every chunk is in, checks the whole file against the CID before it
 * renames the part file into place.
 *
 * <p>Each source has as many requests outstanding as cover about {@link #PIPELINE_SECONDS} of its measured rate
 * (at least one, at most what the source accepts), so a fast source is asked for more and a slow one does not sit
 * on chunks others could deliver. A source that sends a bad chunk gets a strike (the chunk is fetched again, from
 * another source when there is one); two strikes and it is banned for this download. A source whose requests fail
 * {@link #MAX_CONSECUTIVE_FAILURES} times in a row (gone, refusing connections) is dropped. A source that has
 * requests outstanding but delivers nothing for the stall timeout (connected but silent, e.g. a frozen process)
 * loses its requests to the others and is reconnected; after {@link #MAX_STALLS} stalls it is dropped.
 */
final class Download implements TransferHandle {
    private static final Logger LOG = Logger.getLogger(Download.class.getName());
    static final int MAX_STRIKES = 2;
    static final int MAX_CONSECUTIVE_FAILURES = 3;
    static final long CHECKPOINT_MILLIS = 1000;
    /** Default time a source may have requests outstanding without delivering anything before it counts as stalled. */
    static final long STALL_MILLIS = 10_000;
    static final int MAX_STALLS = 2;
    /** How often rates are sampled and stalls looked for. */
    static final long WATCH_MILLIS = 1000;
    /** Requests a source is given cover this much of its measured transfer time. */
    static final double PIPELINE_SECONDS = 1.0;
    /** Requests per source until its rate is measured. */
    static final int INITIAL_DEPTH = 2;

    /** Per-source bookkeeping. */
    static final class Source {
        final PeerInfo peer;
        ChunkSource chunks; // null while its protocol is not available
        final BitSet requested = new BitSet();
        int outstanding;
        int strikes;
        int consecutiveFailures;
        int stalls;
        long verifiedBytes;
        String dropped; // reason, once dropped for good
        long lastResponseNanos; // last response, or when it became busy: the stall clock
        long tickBytes; // bytes received since the last rate sample
        double rate = -1; // bytes per second, moving average; -1 until measured

        Source(PeerInfo peer) {
            this.peer = peer;
        }
    }

    private final ProtocolManagerImpl manager;
    private final ChunkStore store;
    private final FileId id;
    private final Path outputDir;
    private final CompletableFuture<Path> completion = new CompletableFuture<>();
    private final Map<String, Source> sources = new LinkedHashMap<>();
    private final List<String> banned = new ArrayList<>();
    private final java.util.function.LongSupplier clock; // nanoTime, for rates and stalls
    private final long stallNanos;
    private final ReentrantLock digestLock = new ReentrantLock();
    private final Object checkpointLock = new Object();

    // guarded by this
    private TransferState state = TransferState.RESOLVING;
    private FileMetadata meta;
    private BitSet verified;
    private int[] inflight;
    private int cursor; // lowest chunk that may still be unrequested
    private FileChannel part;
    private Path partPath;
    private String error;
    private Path output;
    private long resumedBytes;
    private long fetchedBytes;
    private long verifiedBytes;
    private int corrupt;
    private final long startNanos = System.nanoTime();
    private long endNanos; // when it reached a final state, else 0
    private boolean resolving;
    private java.util.concurrent.ScheduledFuture<?> checkpointTask;
    private java.util.concurrent.ScheduledFuture<?> watchTask;
    private long lastSampleNanos;

    // guarded by digestLock: SHA-256 of the file so far, fed in chunk order; digestCursor is also read under 'early'
    static final int MAX_EARLY_CHUNKS = 32;
    private final MessageDigest whole = Hex.sha256();
    private volatile int digestCursor;
    private final java.util.TreeMap<Integer, ByteBuffer> early = new java.util.TreeMap<>();

    Download(ProtocolManagerImpl manager, ChunkStore store, FileId id, Path outputDir, FileMetadata knownMeta) {
        this.manager = manager;
        this.store = store;
        this.id = id;
        this.outputDir = outputDir;
        this.meta = knownMeta;
        this.clock = manager.clock;
        this.stallNanos = TimeUnit.MILLISECONDS.toNanos(manager.stallMillis);
    }

    @Override
    public FileId fileId() {
        return id;
    }

    Path outputDirectory() {
        return outputDir;
    }

    @Override
    public CompletionStage<Path> completion() {
        return completion.minimalCompletionStage();
    }

    synchronized void addSources(List<PeerInfo> peers) {
        for (PeerInfo p : peers) {
            sources.computeIfAbsent(p.label(), k -> new Source(p));
        }
    }

    /** Starts or continues: resolve metadata if needed, open sources whose protocol is present, request chunks. */
    void start() {
        synchronized (this) {
            if (state.isFinal()) {
                return;
            }
        }
        if (meta == null) {
            resolveMetadata();
        } else {
            begin();
        }
    }

    private void resolveMetadata() {
        List<Source> candidates;
        synchronized (this) {
            if (resolving || meta != null) {
                return;
            }
            candidates = new ArrayList<>();
            for (Source s : sources.values()) {
                if (s.dropped == null && manager.protocolFor(s.peer.protocol()) != null) {
                    candidates.add(s);
                }
            }
            if (candidates.isEmpty()) {
                if (sources.isEmpty()) {
                    fail("no sources for " + id.shortHex() + ": give one with --from HOST:PORT");
                }
                // else: waiting for a protocol to arrive
                return;
            }
            resolving = true;
        }
        tryMetadata(candidates, 0, new ArrayList<>());
    }

    private void tryMetadata(List<Source> candidates, int i, List<String> errors) {
        if (i >= candidates.size()) {
            synchronized (this) {
                resolving = false;
            }
            fail("could not get the metadata of " + id.shortHex() + ": " + String.join("; ", errors));
            return;
        }
        Source s = candidates.get(i);
        ContentProtocol p = manager.protocolFor(s.peer.protocol());
        if (p == null) {
            tryMetadata(candidates, i + 1, errors);
            return;
        }
        CompletionStage<FileMetadata> stage;
        try {
            stage = p.metadata(id, s.peer);
        } catch (RuntimeException e) {
            stage = CompletableFuture.failedFuture(e);
        }
        // continue on a worker: begin() opens files and re-hashes resumed chunks, never on a network thread
        stage.whenCompleteAsync((m, e) -> {
            String problem = e != null ? describe(e) : checkMetadata(m);
            if (problem != null) {
                errors.add(s.peer.address() + ": " + problem);
                tryMetadata(candidates, i + 1, errors);
                return;
            }
            synchronized (this) {
                resolving = false;
                meta = m;
            }
            begin();
        }, store.workers());
    }

    private String checkMetadata(FileMetadata m) {
        if (m == null) {
            return "no metadata";
        }
        if (!m.id().equals(id)) {
            return "peer answered with metadata of another file (" + m.id().shortHex() + ")";
        }
        if (!Merkle.rootHex(m.chunkHashes()).equals(m.merkleRoot())) {
            return "metadata is inconsistent: its Merkle root does not match its chunk hashes";
        }
        return null;
    }

    /** Metadata known: open the part file, re-verify what a previous run left, and go. */
    private void begin() {
        Path writing = outputDir; // what a failure to write names (the output directory, the part, or the store)
        try {
            synchronized (this) {
                if (state.isFinal() || part != null) {
                    pump();
                    return;
                }
                int n = meta.chunkCount();
                inflight = new int[n];
                Files.createDirectories(outputDir);
                var rec = store.download(id);
                partPath = rec.map(r -> Path.of(r.partPath())).orElse(
                        outputDir.resolve("." + meta.name() + "." + id.shortHex() + ".chiral-part"));
                writing = partPath;
                part = FileChannel.open(partPath, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
                List<String> hints = new ArrayList<>();
                for (Source s : sources.values()) {
                    hints.add(s.peer.label());
                }
                writing = store.dataDir().resolve("store");
                store.saveDownload(new ChunkStore.DownloadRecord(meta, id, partPath.toString(), outputDir.toString(), hints));
                verified = store.readBitmap(id, n);
            }
            recheckResumed();
            synchronized (this) {
                resumedBytes = 0;
                for (int c = verified.nextSetBit(0); c >= 0; c = verified.nextSetBit(c + 1)) {
                    resumedBytes += meta.chunkLength(c);
                }
                verifiedBytes = resumedBytes;
                if (state == TransferState.RESOLVING) {
                    state = TransferState.DOWNLOADING;
                }
                if (resumedBytes > 0) {
                    LOG.info("resuming " + id.shortHex() + " with " + verified.cardinality() + "/" + meta.chunkCount() + " chunks verified on disk");
                }
            }
            synchronized (this) {
                if (checkpointTask == null) {
                    checkpointTask = store.checkpoints().scheduleWithFixedDelay(this::checkpoint, CHECKPOINT_MILLIS,
                            CHECKPOINT_MILLIS, TimeUnit.MILLISECONDS);
                    lastSampleNanos = clock.getAsLong();
                    watchTask = store.checkpoints().scheduleWithFixedDelay(() -> store.workers().execute(this::watch),
                            WATCH_MILLIS, WATCH_MILLIS, TimeUnit.MILLISECONDS);
                }
            }
            manager.post(io.chiral.api.ChiralEvents.TRANSFER_STARTED, this, null);
            openSources();
            if (isAllVerified()) {
                finish();
            } else {
                pump();
            }
        } catch (IOException | RuntimeException e) {
            fail("cannot write to " + DiskErrors.describe(writing, e));
        }
    }

    /** Chunks the bitmap says are verified are hashed again from disk: a torn write never counts as data. */
    private void recheckResumed() throws IOException {
        BitSet marks;
        synchronized (this) {
            marks = (BitSet) verified.clone();
        }
        if (marks.isEmpty()) {
            return;
        }
        List<CompletableFuture<Void>> checks = new ArrayList<>();
        for (int c = marks.nextSetBit(0); c >= 0; c = marks.nextSetBit(c + 1)) {
            final int chunk = c;
            checks.add(CompletableFuture.runAsync(() -> {
                try {
                    ByteBuffer b = ByteBuffer.allocate(meta.chunkLength(chunk));
                    Chunker.readFully(part, b, meta.chunkOffset(chunk), partPath);
                    if (!matches(chunk, b.flip())) {
                        synchronized (this) {
                            verified.clear(chunk);
                        }
                    }
                } catch (IOException e) {
                    synchronized (this) {
                        verified.clear(chunk);
                    }
                }
            }, store.workers()));
        }
        CompletableFuture.allOf(checks.toArray(CompletableFuture[]::new)).join();
    }

    /** Opens a chunk source for every peer whose protocol is present now. Safe to call again. */
    void openSources() {
        List<Source> toOpen = new ArrayList<>();
        synchronized (this) {
            if (meta == null || state.isFinal() || part == null) {
                return;
            }
            for (Source s : sources.values()) {
                if (s.chunks == null && s.dropped == null) {
                    toOpen.add(s);
                }
            }
        }
        for (Source s : toOpen) {
            ContentProtocol p = manager.protocolFor(s.peer.protocol());
            if (p == null) {
                continue;
            }
            try {
                ChunkSource cs = p.openSource(meta, s.peer);
                synchronized (this) {
                    s.chunks = cs;
                    s.consecutiveFailures = 0;
                }
            } catch (RuntimeException e) {
                dropSource(s, "cannot open: " + describe(e));
            }
        }
        pump();
    }

    /** A protocol went away: its sources wait for it to come back. */
    void protocolRemoved(String protocol) {
        List<ChunkSource> close = new ArrayList<>();
        synchronized (this) {
            for (Source s : sources.values()) {
                if (s.peer.protocol().equals(protocol) && s.chunks != null) {
                    close.add(s.chunks);
                    s.chunks = null;
                    s.outstanding = 0;
                    s.requested.clear();
                }
            }
            if (inflight != null) {
                java.util.Arrays.fill(inflight, 0);
                for (Source s : sources.values()) {
                    for (int c = s.requested.nextSetBit(0); c >= 0; c = s.requested.nextSetBit(c + 1)) {
                        inflight[c]++;
                    }
                }
                cursor = 0;
            }
        }
        close.forEach(ChunkSource::close);
    }

    /** Issues requests until every usable source has its pipeline full. */
    private void pump() {
        List<Runnable> requests = new ArrayList<>();
        synchronized (this) {
            if (state != TransferState.DOWNLOADING || meta == null) {
                return;
            }
            boolean anyUsable = false;
            for (Source s : sources.values()) {
                if (s.dropped != null) {
                    continue;
                }
                anyUsable = true;
                if (s.chunks == null) {
                    continue;
                }
                int limit = depth(s.rate, meta.chunkSize(), s.chunks.maxOutstanding());
                while (s.outstanding < limit) {
                    int c = pick(s);
                    if (c < 0) {
                        break;
                    }
                    if (s.outstanding == 0) {
                        s.lastResponseNanos = clock.getAsLong(); // busy from now on: the stall clock starts
                    }
                    s.outstanding++;
                    s.requested.set(c);
                    inflight[c]++;
                    final ChunkSource cs = s.chunks;
                    requests.add(() -> request(s, cs, c));
                }
            }
            if (!anyUsable && !isAllVerifiedLocked()) {
                StringBuilder why = new StringBuilder();
                for (Source s : sources.values()) {
                    why.append(why.length() > 0 ? "; " : "").append(s.peer.address()).append(": ").append(s.dropped);
                }
                failLocked("no usable sources left for " + meta.name() + " (" + verified.cardinality() + "/"
                        + meta.chunkCount() + " chunks verified and kept; run get again to resume): " + why);
            }
        }
        requests.forEach(Runnable::run);
    }

    /** Next chunk for {@code s}: lowest missing unrequested chunk it has (rarest among partial holders), else end game. */
    private int pick(Source s) {
        int n = meta.chunkCount();
        BitSet has = s.chunks.available();
        int best = -1;
        int bestAvail = Integer.MAX_VALUE;
        boolean sawUnrequested = false;
        for (int c = verified.nextClearBit(cursor); c < n; c = verified.nextClearBit(c + 1)) {
            if (inflight[c] > 0) {
                continue;
            }
            if (!sawUnrequested) {
                sawUnrequested = true;
                cursor = c;
            }
            if (has != null && !has.get(c)) {
                continue;
            }
            if (avoidNext.get(c) == s && usableSources() > 1) {
                continue; // served this chunk corrupt once: let another source have it
            }
            int avail = availability(c);
            if (avail <= 1 || avail == Integer.MAX_VALUE) {
                return c; // rarest possible, or every source has everything: keep disk order
            }
            if (avail < bestAvail) {
                best = c;
                bestAvail = avail;
            }
        }
        if (best >= 0) {
            return best;
        }
        if (!sawUnrequested) {
            cursor = n;
        }
        // end game: every missing chunk is in flight; ask this source too for one it has not been asked for
        for (int c = verified.nextClearBit(0); c < n; c = verified.nextClearBit(c + 1)) {
            if (inflight[c] > 0 && !s.requested.get(c) && (has == null || has.get(c)) && inflight[c] < 2) {
                return c;
            }
        }
        return -1;
    }

    private void release(int c) {
        if (inflight[c] > 0) {
            inflight[c]--;
        }
    }

    private int usableSources() {
        int n = 0;
        for (Source s : sources.values()) {
            if (s.chunks != null && s.dropped == null) {
                n++;
            }
        }
        return n;
    }

    /** How many usable sources have chunk c (MAX_VALUE when all usable sources have every chunk). */
    private int availability(int c) {
        int count = 0;
        boolean partial = false;
        for (Source s : sources.values()) {
            if (s.chunks == null || s.dropped != null) {
                continue;
            }
            BitSet has = s.chunks.available();
            if (has == null) {
                count++;
            } else {
                partial = true;
                if (has.get(c)) {
                    count++;
                }
            }
        }
        return partial ? count : Integer.MAX_VALUE;
    }

    private void request(Source s, ChunkSource cs, int c) {
        CompletionStage<ByteBuffer> stage;
        try {
            stage = cs.fetchChunk(c);
        } catch (RuntimeException e) {
            stage = CompletableFuture.failedFuture(e);
        }
        stage.whenCompleteAsync((buf, e) -> onChunk(s, cs, c, buf, e), store.workers());
    }

    private void onChunk(Source s, ChunkSource cs, int c, ByteBuffer buf, Throwable e) {
        boolean good = false;
        boolean wanted;
        synchronized (this) {
            if (s.chunks != cs) {
                return; // source was closed or replaced meanwhile; its bookkeeping was reset
            }
            s.outstanding--;
            s.requested.clear(c);
            s.lastResponseNanos = clock.getAsLong();
            if (buf != null) {
                fetchedBytes += buf.remaining();
                s.tickBytes += buf.remaining();
            }
            wanted = !state.isFinal() && !verified.get(c);
            if (e != null || !wanted) {
                release(c);
            }
            // c stays counted in flight until it is verified, so refilling the slot now cannot ask for it again
        }
        if (e != null) {
            onSourceError(s, cs, describe(e));
            return;
        }
        if (wanted) {
            good = buf.remaining() == meta.chunkLength(c) && matches(c, buf.duplicate());
            if (good) {
                try {
                    writeChunk(c, buf.duplicate());
                } catch (IOException ex) {
                    fail("cannot write " + meta.name() + ": " + DiskErrors.describe(partPath, ex));
                    return;
                }
            }
        }
        boolean done = false;
        synchronized (this) {
            if (wanted) {
                release(c);
            }
            if (!wanted) {
                // a duplicate from the end game, or we finished meanwhile
            } else if (good) {
                if (!verified.get(c)) {
                    verified.set(c);
                    verifiedBytes += meta.chunkLength(c);
                    s.verifiedBytes += meta.chunkLength(c);
                }
                s.consecutiveFailures = 0;
                avoidNext.remove(c);
                done = isAllVerifiedLocked();
            } else {
                corrupt++;
                s.strikes++;
                LOG.warning("chunk " + c + " of " + id.shortHex() + " from " + s.peer.label() + " failed verification (strike "
                        + s.strikes + "/" + MAX_STRIKES + ")");
                if (c < cursor) {
                    cursor = c;
                }
                if (s.strikes >= MAX_STRIKES) {
                    banned.add(s.peer.label());
                    dropLocked(s, "banned: sent " + s.strikes + " chunks that failed verification");
                } else {
                    avoidNext.put(c, s);
                }
            }
        }
        if (good) {
            feedDigest(c, buf.duplicate());
        }
        if (done) {
            finish();
        } else {
            pump();
        }
    }

    // chunk -> source that served it corrupt once; pick() skips that source for it while others can serve it
    private final Map<Integer, Source> avoidNext = new java.util.HashMap<>();

    private void onSourceError(Source s, ChunkSource cs, String why) {
        boolean retry;
        synchronized (this) {
            if (state.isFinal() || s.dropped != null) {
                return;
            }
            s.consecutiveFailures++;
            if (s.consecutiveFailures >= MAX_CONSECUTIVE_FAILURES) {
                dropLocked(s, why);
                retry = false;
            } else {
                retry = true;
            }
            if (inflight != null) {
                cursor = 0;
            }
        }
        if (retry) {
            LOG.fine("source " + s.peer.label() + " failed (" + why + "), retrying");
            long delay = 200L << Math.min(4, s.consecutiveFailures);
            CompletableFuture.delayedExecutor(delay, TimeUnit.MILLISECONDS, store.workers()).execute(this::pump);
        } else {
            LOG.warning("dropping source " + s.peer.label() + " for " + id.shortHex() + ": " + why);
            pump();
        }
    }

    private void dropSource(Source s, String why) {
        synchronized (this) {
            dropLocked(s, why);
        }
        pump();
    }

    private void dropLocked(Source s, String why) {
        s.dropped = why;
        ChunkSource cs = detachLocked(s);
        if (cs != null) {
            cs.close();
        }
    }

    /**
     * Takes the chunk source away from {@code s} and gives its outstanding chunks back to the others; answers
     * that still arrive from the returned source are ignored. The caller closes it.
     */
    private ChunkSource detachLocked(Source s) {
        ChunkSource cs = s.chunks;
        s.chunks = null;
        if (inflight != null) {
            for (int c = s.requested.nextSetBit(0); c >= 0; c = s.requested.nextSetBit(c + 1)) {
                if (inflight[c] > 0 && s.outstanding > 0) {
                    inflight[c]--;
                }
            }
            cursor = 0;
        }
        s.requested.clear();
        s.outstanding = 0;
        return cs;
    }

    /** Requests outstanding at a source with rate {@code bytesPerSecond} (negative: not measured yet). */
    static int depth(double bytesPerSecond, int chunkSize, int maxOutstanding) {
        int max = Math.max(1, maxOutstanding);
        if (bytesPerSecond < 0) {
            return Math.min(max, INITIAL_DEPTH);
        }
        double chunks = Math.ceil(bytesPerSecond * PIPELINE_SECONDS / chunkSize);
        return (int) Math.max(1, Math.min(max, chunks));
    }

    /**
     * Runs every {@link #WATCH_MILLIS}: samples each source's rate (which sets its pipelining depth) and takes the
     * requests away from a source that has delivered nothing for the stall timeout. Such a source is connected
     * afresh (on probation: its measured rate gives it one request), and dropped at its {@link #MAX_STALLS}th stall.
     */
    void watch() {
        List<ChunkSource> close = new ArrayList<>();
        boolean stalled = false;
        synchronized (this) {
            if (state != TransferState.DOWNLOADING || meta == null) {
                return;
            }
            long now = clock.getAsLong();
            long dt = now - lastSampleNanos;
            boolean sample = dt >= TimeUnit.MILLISECONDS.toNanos(WATCH_MILLIS) / 2;
            if (sample) {
                lastSampleNanos = now;
            }
            for (Source s : sources.values()) {
                if (s.chunks == null || s.dropped != null) {
                    continue;
                }
                if (sample && (s.outstanding > 0 || s.tickBytes > 0)) {
                    double r = s.tickBytes * 1e9 / dt;
                    s.rate = s.rate < 0 ? r : (s.rate + r) / 2;
                    s.tickBytes = 0;
                }
                if (s.outstanding == 0 || now - s.lastResponseNanos < stallNanos) {
                    continue;
                }
                stalled = true;
                s.stalls++;
                s.rate = 0;
                String why = String.format(java.util.Locale.ROOT, "stalled: nothing received for %.1f s with %d %s"
                        + " outstanding", (now - s.lastResponseNanos) / 1e9, s.outstanding,
                        s.outstanding == 1 ? "request" : "requests");
                if (s.stalls >= MAX_STALLS) {
                    LOG.warning("dropping source " + s.peer.label() + " for " + id.shortHex() + ": " + why + " ("
                            + s.stalls + " times)");
                    dropLocked(s, why + " (" + s.stalls + " times)");
                } else {
                    LOG.info("source " + s.peer.label() + " of " + id.shortHex() + " " + why
                            + "; its chunks go to other sources and it is connected again");
                    close.add(detachLocked(s));
                }
            }
        }
        close.forEach(ChunkSource::close);
        if (stalled) {
            openSources(); // connects the stalled sources again, then gives their chunks out
        }
    }

    private boolean matches(int c, ByteBuffer data) {
        MessageDigest md = Hex.sha256();
        md.update(data);
        return Hex.hex(md.digest()).equals(meta.chunkHashes().get(c));
    }

    private void writeChunk(int c, ByteBuffer data) throws IOException {
        long pos = meta.chunkOffset(c);
        while (data.hasRemaining()) {
            pos += part.write(data, pos);
        }
    }

    /**
     * Feeds the whole-file digest in chunk order. A chunk verified ahead of the digest cursor is kept in memory (up
     * to {@link #MAX_EARLY_CHUNKS}) until the cursor reaches it; beyond that it is read back from the part file.
     */
    private void feedDigest(int c, ByteBuffer data) {
        synchronized (early) {
            if (c >= digestCursor && early.size() < MAX_EARLY_CHUNKS) {
                early.put(c, data);
            }
        }
        do {
            if (!digestLock.tryLock()) {
                return; // the holder drains what is ready
            }
            try {
                catchUpDigest();
            } catch (IOException e) {
                LOG.log(Level.FINE, "digest catch-up deferred", e);
                return;
            } finally {
                digestLock.unlock();
            }
        } while (hasEarlyAtCursor());
    }

    private boolean hasEarlyAtCursor() {
        synchronized (early) {
            return early.containsKey(digestCursor);
        }
    }

    /** Feeds verified chunks at the digest cursor from the part file. Holds digestLock. */
    private void catchUpDigest() throws IOException {
        ByteBuffer b = null;
        while (true) {
            int c = digestCursor;
            synchronized (this) {
                if (c >= meta.chunkCount() || !verified.get(c)) {
                    return;
                }
            }
            ByteBuffer kept;
            synchronized (early) {
                kept = early.remove(c);
            }
            if (kept != null) {
                whole.update(kept);
            } else {
                if (b == null) {
                    b = ByteBuffer.allocate(meta.chunkSize());
                }
                b.clear().limit(meta.chunkLength(c));
                Chunker.readFully(part, b, meta.chunkOffset(c), partPath);
                whole.update(b.flip());
            }
            synchronized (early) {
                digestCursor++;
            }
        }
    }

    /**
     * Forces the verified data to disk, then replaces the bitmap that vouches for it. Runs every second on the
     * store's checkpoint thread, and once more when the transfer stops; never on the verification path.
     */
    private void checkpoint() {
        synchronized (checkpointLock) {
            BitSet snapshot;
            synchronized (this) {
                if (part == null || !part.isOpen() || state == TransferState.COMPLETED) {
                    return;
                }
                snapshot = (BitSet) verified.clone();
            }
            Path writing = partPath;
            try {
                part.force(false); // data first, then the bitmap that vouches for it
                writing = store.dataDir().resolve("store");
                store.writeBitmap(id, snapshot, meta.chunkCount());
            } catch (java.nio.channels.ClosedChannelException e) {
                // the transfer ended meanwhile; its final state was written by whoever closed it
            } catch (IOException e) {
                LOG.warning("cannot checkpoint " + id.shortHex() + ": " + DiskErrors.describe(writing, e));
                if (DiskErrors.isDiskFull(e)) {
                    // no bitmap can vouch for the verified data any more, and the store could not record the file
                    fail("cannot write " + meta.name() + ": " + DiskErrors.describe(writing, e));
                }
            }
        }
    }

    private synchronized void stopCheckpoints() {
        if (checkpointTask != null) {
            checkpointTask.cancel(false);
        }
        if (watchTask != null) {
            watchTask.cancel(false);
        }
    }

    private boolean isAllVerified() {
        synchronized (this) {
            return isAllVerifiedLocked();
        }
    }

    private boolean isAllVerifiedLocked() {
        return verified != null && verified.cardinality() == meta.chunkCount();
    }

    private void finish() {
        synchronized (this) {
            if (state != TransferState.DOWNLOADING && state != TransferState.PAUSED) {
                return;
            }
            state = TransferState.VERIFYING;
        }
        closeSources();
        stopCheckpoints();
        Path writing = partPath;
        try {
            checkpoint();
            synchronized (this) {
                if (state != TransferState.VERIFYING) {
                    return; // the checkpoint failed it (a full disk)
                }
            }
            byte[] digest;
            digestLock.lock();
            try {
                catchUpDigest();
                digest = whole.digest();
            } finally {
                digestLock.unlock();
            }
            if (!FileId.of(digest).equals(id)) {
                String why = "every chunk matched its hash but the whole file does not match CID " + id.shortHex()
                        + ": the metadata was wrong; the partial file was discarded";
                discardPart();
                fail(why);
                return;
            }
            part.force(true);
            part.close();
            Path target = uniqueTarget(outputDir, meta.name());
            writing = target;
            AtomicFiles.move(partPath, target);
            writing = store.dataDir().resolve("store");
            store.markComplete(meta, target);
            store.deleteDownload(id);
            synchronized (this) {
                output = target;
                state = TransferState.COMPLETED;
                endNanos = System.nanoTime();
            }
            LOG.info("downloaded " + meta.name() + " (" + id.shortHex() + ") to " + target);
            manager.post(io.chiral.api.ChiralEvents.TRANSFER_COMPLETED, this, null);
            manager.seedAll(meta);
            completion.complete(target);
        } catch (IOException e) {
            fail("cannot finish " + meta.name() + ": " + DiskErrors.describe(writing, e));
        }
    }

    static Path uniqueTarget(Path dir, String name) {
        Path p = dir.resolve(name);
        if (!Files.exists(p)) {
            return p;
        }
        int dot = name.lastIndexOf('.');
        String base = dot > 0 ? name.substring(0, dot) : name;
        String ext = dot > 0 ? name.substring(dot) : "";
        for (int i = 1; ; i++) {
            p = dir.resolve(base + " (" + i + ")" + ext);
            if (!Files.exists(p)) {
                return p;
            }
        }
    }

    private void discardPart() {
        try {
            synchronized (this) {
                if (part != null && part.isOpen()) {
                    part.close();
                }
            }
            if (partPath != null) {
                Files.deleteIfExists(partPath);
            }
            store.deleteDownload(id);
        } catch (IOException e) {
            LOG.warning("cannot remove partial file " + partPath + ": " + e);
        }
    }

    private void closeSources() {
        List<ChunkSource> close = new ArrayList<>();
        synchronized (this) {
            for (Source s : sources.values()) {
                if (s.chunks != null) {
                    close.add(s.chunks);
                    s.chunks = null;
                }
            }
        }
        close.forEach(ChunkSource::close);
    }

    void fail(String why) {
        synchronized (this) {
            failLocked(why);
        }
    }

    private void failLocked(String why) {
        if (state.isFinal()) {
            return;
        }
        state = TransferState.FAILED;
        endNanos = System.nanoTime();
        error = why;
        LOG.warning("download " + id.shortHex() + " failed: " + why);
        store.workers().execute(() -> {
            closeSources();
            stopCheckpoints();
            checkpoint();
            synchronized (this) {
                try {
                    if (part != null && part.isOpen()) {
                        part.close();
                    }
                } catch (IOException ignored) {
                    // closing a channel we are abandoning
                }
            }
            manager.post(io.chiral.api.ChiralEvents.TRANSFER_FAILED, this, why);
            completion.completeExceptionally(new IOException(why));
        });
    }

    @Override
    public void pause() {
        synchronized (this) {
            if (state == TransferState.DOWNLOADING) {
                state = TransferState.PAUSED;
            }
        }
        checkpoint();
    }

    @Override
    public void resume() {
        synchronized (this) {
            if (state != TransferState.PAUSED) {
                return;
            }
            state = TransferState.DOWNLOADING;
        }
        pump();
    }

    @Override
    public void cancel() {
        synchronized (this) {
            if (state.isFinal()) {
                return;
            }
            state = TransferState.CANCELLED;
            endNanos = System.nanoTime();
        }
        closeSources();
        stopCheckpoints();
        discardPart();
        manager.post(io.chiral.api.ChiralEvents.TRANSFER_CANCELLED, this, null);
        completion.completeExceptionally(new CancellationException("cancelled"));
    }

    /** The verified file is already in the output folder (a download of an earlier run): complete, nothing to fetch. */
    void alreadyHere(Path file) {
        synchronized (this) {
            int n = meta.chunkCount();
            verified = new BitSet(n);
            verified.set(0, n);
            resumedBytes = meta.size();
            verifiedBytes = meta.size();
            output = file;
            state = TransferState.COMPLETED;
            endNanos = System.nanoTime();
        }
        LOG.info("already have " + meta.name() + " (" + id.shortHex() + ") at " + file);
        completion.complete(file);
    }

    /** Node shutting down: keep everything for a resume, release files and connections. */
    void suspend() {
        closeSources();
        stopCheckpoints();
        checkpoint();
        synchronized (this) {
            if (!state.isFinal()) {
                state = TransferState.PAUSED;
            }
            try {
                if (part != null && part.isOpen()) {
                    part.close();
                }
            } catch (IOException ignored) {
                // shutting down
            }
        }
    }

    @Override
    public synchronized TransferProgress progress() {
        Map<String, Long> per = new LinkedHashMap<>();
        Map<String, String> dropped = new LinkedHashMap<>();
        for (Source s : sources.values()) {
            per.put(s.peer.label(), s.verifiedBytes);
            if (s.dropped != null) {
                dropped.put(s.peer.label(), s.dropped);
            }
        }
        return new TransferProgress(state, meta != null ? meta.name() : id.hex(), meta != null ? meta.size() : -1,
                verifiedBytes, resumedBytes, fetchedBytes, meta != null ? meta.chunkCount() : -1,
                verified != null ? verified.cardinality() : 0, corrupt, per, List.copyOf(banned), dropped,
                ((endNanos != 0 ? endNanos : System.nanoTime()) - startNanos) / 1e9,
                output != null ? output.toString() : null, error);
    }

    synchronized FileMetadata metadataOrNull() {
        return meta;
    }

    static String describe(Throwable e) {
        Throwable t = e;
        while ((t instanceof java.util.concurrent.CompletionException || t instanceof java.util.concurrent.ExecutionException)
                && t.getCause() != null) {
            t = t.getCause();
        }
        String m = t.getMessage();
        return m == null || m.isBlank() ? t.getClass().getSimpleName() : m;
    }
}
