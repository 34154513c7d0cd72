package io.chiral.core.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.chiral.api.ChunkSource;
import io.chiral.api.ContentProtocol;
import io.chiral.api.DownloadRequest;
import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.api.PeerInfo;
import io.chiral.api.TransferProgress;
import io.chiral.api.TransferState;

/**
 * The multi-source engine with seeders inside the test: each serves the chunks of a real file through the
 * {@link ChunkSource} SPI, and the test decides when (and whether) each request is answered. The engine's clock is
 * the test's, so stalls and rates are decided by the steps below, not by how fast the machine happens to be.
 */
class DownloadTest {
    static final int CHUNK = FileMetadata.DEFAULT_CHUNK_SIZE;
    static final long STALL_MILLIS = 10_000;

    @TempDir
    Path dir;

    private final AtomicLong now = new AtomicLong(1_000_000_000L);
    private Path file;
    private FileMetadata meta;
    private ChunkStore store;
    private ProtocolManagerImpl manager;
    private final List<Seeder> seeders = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        byte[] data = new byte[40 * CHUNK + 1234];
        new Random(7).nextBytes(data);
        file = Files.write(dir.resolve("data.bin"), data);
        ChunkStore seedStore = new ChunkStore(dir.resolve("seed"), 2);
        try {
            meta = seedStore.add(file);
        } finally {
            seedStore.close();
        }
        store = new ChunkStore(dir.resolve("node"), 2);
        manager = new ProtocolManagerImpl(store);
        manager.stallMillis = STALL_MILLIS;
        manager.clock = now::get;
        manager.activate();
        manager.addProtocol(new TestProtocol());
    }

    @AfterEach
    void tearDown() {
        manager.deactivate();
        store.close();
    }

    @Test
    void depthFollowsTheMeasuredRate() {
        assertEquals(Download.INITIAL_DEPTH, Download.depth(-1, CHUNK, 4), "not measured yet");
        assertEquals(1, Download.depth(0, CHUNK, 4), "delivered nothing: one request on probation");
        assertEquals(1, Download.depth(100 * 1024, CHUNK, 4));
        assertEquals(3, Download.depth(600 * 1024, CHUNK, 4));
        assertEquals(4, Download.depth(8 << 20, CHUNK, 4), "capped at what the source accepts");
        assertEquals(32, Download.depth(8 << 20, CHUNK, 64), "a second of 8 MiB/s");
        assertEquals(1, Download.depth(8 << 20, CHUNK, 0));
    }

    @Test
    void aFastSourceIsGivenMoreRequestsThanASlowOne() throws Exception {
        Seeder fast = seeder("fast");
        Seeder slow = seeder("slow");
        Download d = start(fast, slow);
        await(() -> fast.held() == Download.INITIAL_DEPTH && slow.held() == Download.INITIAL_DEPTH, "first requests");
        for (int i = 0; i < 8; i++) { // fast answers 8 chunks within the next second, slow none
            fast.releaseOne();
            await(() -> fast.held() == Download.INITIAL_DEPTH, "fast asked again");
        }
        now.addAndGet(TimeUnit.SECONDS.toNanos(1));
        d.watch(); // rates: fast 2 MiB/s (8 chunks in a second), slow 0 B/s

        fast.releaseOne();
        await(() -> fast.held() == 4, "fast given requests for a second of its rate (4, all it accepts)");
        slow.mark();
        slow.releaseOne();
        slow.releaseOne();
        await(() -> slow.fetchesSinceMark() >= 1, "slow asked again once it had nothing outstanding");
        fast.auto();
        assertEquals(TransferState.COMPLETED, finish(d).state());
        assertEquals(1, slow.maxHeldAtFetchSinceMark(), "slow never had more than one request outstanding");
        assertEquals(-1L, Files.mismatch(file, Path.of(d.progress().output())));
        TransferProgress p = d.progress();
        assertTrue(p.bytesPerSource().get(fast.label()) > 30L * CHUNK, "fast delivered most: " + p.bytesPerSource());
    }

    @Test
    void aStalledSourceLosesItsChunksIsReconnectedAndDroppedWhenItStallsAgain() throws Exception {
        Seeder steady = seeder("steady");
        Seeder frozen = seeder("frozen");
        frozen.answerThenFreeze(1); // answers one request, then is connected but silent, like a SIGSTOPped process
        Download d = start(steady, frozen);
        await(() -> frozen.served() == 1 && frozen.held() > 0 && steady.held() > 0, "both sources busy");
        int opens = 0;
        for (int step = 0; step < 8 && !d.progress().droppedSources().containsKey(frozen.label()); step++) {
            await(() -> steady.held() > 0, "steady asked");
            now.addAndGet(TimeUnit.MILLISECONDS.toNanos(STALL_MILLIS / 2));
            long verified = d.progress().chunksVerified();
            steady.releaseOne(); // the steady source keeps delivering, so only the frozen one stalls
            await(() -> d.progress().chunksVerified() > verified, "steady chunk verified");
            d.watch();
            if (frozen.opens() == 2 && opens == 1) {
                await(() -> frozen.held() > 0, "the reconnected source is asked again");
                assertEquals(1, frozen.held(), "on probation: one request");
            }
            opens = frozen.opens();
        }
        TransferProgress p = d.progress();
        String why = p.droppedSources().get(frozen.label());
        assertTrue(why != null && why.startsWith("stalled"), "frozen source dropped as stalled: " + p.droppedSources());
        assertTrue(why.contains("2 times"), why);
        assertEquals(2, frozen.opens(), "reconnected once after its first stall");
        assertTrue(p.chunksVerified() < meta.chunkCount() / 2, "dropped mid-transfer, not at the end game");

        steady.auto();
        p = finish(d);
        assertEquals(TransferState.COMPLETED, p.state());
        assertEquals(-1L, Files.mismatch(file, Path.of(p.output())));
        assertEquals(CHUNK, p.bytesPerSource().get(frozen.label()));
        assertEquals(meta.size() - CHUNK, p.bytesPerSource().get(steady.label()), "the rest, frozen one's chunks included");
        assertTrue(p.bannedSources().isEmpty(), "stalling is not sending bad data");
    }

    @Test
    void aSourceThatGoesAwayIsDroppedAndTheOthersFinish() throws Exception {
        Seeder steady = seeder("steady");
        Seeder gone = seeder("gone");
        gone.answerThenFail(2, "connection refused");
        Download d = start(steady, gone);
        await(() -> steady.held() > 0, "steady busy");
        await(() -> d.progress().droppedSources().containsKey(gone.label()), "gone dropped");
        assertTrue(d.progress().droppedSources().get(gone.label()).contains("connection refused"),
                d.progress().droppedSources().toString());
        steady.auto();
        TransferProgress p = finish(d);
        assertEquals(TransferState.COMPLETED, p.state());
        assertEquals(-1L, Files.mismatch(file, Path.of(p.output())));
        assertEquals(2L * CHUNK, p.bytesPerSource().get(gone.label()));
    }

    // --- helpers

    private Seeder seeder(String name) {
        Seeder s = new Seeder(PeerInfo.of(TestProtocol.NAME, name + ":1"));
        seeders.add(s);
        return s;
    }

    private Download start(Seeder... from) {
        List<PeerInfo> peers = new ArrayList<>();
        for (Seeder s : from) {
            peers.add(s.peer);
        }
        return (Download) manager.download(new DownloadRequest(meta.id().hex(), peers, dir.resolve("out")));
    }

    private static TransferProgress finish(Download d) throws Exception {
        try {
            d.completion().toCompletableFuture().get(60, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            fail("download failed: " + d.progress().error());
        }
        return d.progress();
    }

    /** Waits for a state the engine reaches on its worker threads; the deadline only keeps a broken engine from hanging. */
    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("never happened: " + what);
            }
            Thread.sleep(2);
        }
    }

    /** The protocol of the test's seeders: metadata from the seeding store, a {@link Seeder} per peer. */
    private final class TestProtocol implements ContentProtocol {
        static final String NAME = "test";

        @Override
        public String name() {
            return NAME;
        }

        @Override
        public boolean canHandle(String identifier) {
            return false;
        }

        @Override
        public List<String> listenAddresses() {
            return List.of();
        }

        @Override
        public CompletionStage<FileMetadata> metadata(FileId id, PeerInfo peer) {
            return CompletableFuture.completedFuture(meta);
        }

        @Override
        public ChunkSource openSource(FileMetadata metadata, PeerInfo peer) {
            for (Seeder s : seeders) {
                if (s.peer.equals(peer)) {
                    return s.open();
                }
            }
            throw new IllegalArgumentException("no seeder " + peer);
        }

        @Override
        public void seed(FileMetadata metadata) {
        }

        @Override
        public void stopSeeding(FileId id) {
        }

        @Override
        public List<PeerInfo> peers(FileId id) {
            return List.of();
        }
    }

    /**
     * A peer holding the whole file. Requests wait until the test releases them, or are answered at once after
     * {@link #auto()}; a frozen seeder never answers again, a failing one fails every further request. Closing a
     * source fails what it still holds, as a closed connection would.
     */
    private final class Seeder {
        final PeerInfo peer;
        private final List<Held> held = new ArrayList<>();
        private boolean auto;
        private int freezeAfter = -1;
        private int failAfter = -1;
        private String failure;
        private int opens;
        private int answering; // requests answered or being answered
        private int served;
        private int fetchesSinceMark;
        private int maxHeldAtFetchSinceMark;
        private boolean marked;

        private record Held(ChunkSource source, int index, CompletableFuture<ByteBuffer> result) {
        }

        Seeder(PeerInfo peer) {
            this.peer = peer;
        }

        String label() {
            return peer.label();
        }

        synchronized void answerThenFreeze(int n) {
            freezeAfter = n;
            auto = true;
        }

        synchronized void answerThenFail(int n, String why) {
            failAfter = n;
            failure = why;
            auto = true;
        }

        synchronized int held() {
            return held.size();
        }

        synchronized int opens() {
            return opens;
        }

        synchronized int served() {
            return served;
        }

        synchronized void mark() {
            marked = true;
        }

        synchronized int fetchesSinceMark() {
            return fetchesSinceMark;
        }

        synchronized int maxHeldAtFetchSinceMark() {
            return maxHeldAtFetchSinceMark;
        }

        /** From now on every request is answered at once, the waiting ones first. */
        void auto() {
            List<Held> go;
            synchronized (this) {
                auto = true;
                go = new ArrayList<>(held);
                held.clear();
                answering += go.size();
            }
            go.forEach(this::answer);
        }

        void releaseOne() {
            Held h;
            synchronized (this) {
                if (held.isEmpty()) {
                    throw new IllegalStateException(peer + " holds no request");
                }
                h = held.remove(0);
                answering++;
            }
            answer(h);
        }

        private void answer(Held h) {
            try (FileChannel ch = FileChannel.open(file)) {
                ByteBuffer b = ByteBuffer.allocate(meta.chunkLength(h.index));
                Chunker.readFully(ch, b, meta.chunkOffset(h.index), file);
                synchronized (this) {
                    served++;
                }
                h.result.complete(b.flip());
            } catch (IOException e) {
                h.result.completeExceptionally(e);
            }
        }

        ChunkSource open() {
            synchronized (this) {
                opens++;
            }
            return new ChunkSource() {
                private boolean closed;

                @Override
                public PeerInfo peer() {
                    return peer;
                }

                @Override
                public CompletionStage<ByteBuffer> fetchChunk(int index) {
                    Held h = new Held(this, index, new CompletableFuture<>());
                    boolean answerNow;
                    synchronized (Seeder.this) {
                        if (closed) {
                            return CompletableFuture.failedFuture(new IOException(peer.address() + ": source closed"));
                        }
                        if (failAfter >= 0 && answering >= failAfter) {
                            return CompletableFuture.failedFuture(new IOException(peer.address() + ": " + failure));
                        }
                        answerNow = auto && !(freezeAfter >= 0 && answering >= freezeAfter);
                        if (answerNow) {
                            answering++;
                        } else {
                            held.add(h);
                            if (marked) {
                                fetchesSinceMark++;
                                maxHeldAtFetchSinceMark = Math.max(maxHeldAtFetchSinceMark, held.size());
                            }
                        }
                    }
                    if (answerNow) {
                        answer(h);
                    }
                    return h.result;
                }

                @Override
                public void close() {
                    List<Held> doomed = new ArrayList<>();
                    synchronized (Seeder.this) {
                        closed = true;
                        for (Iterator<Held> it = held.iterator(); it.hasNext();) {
                            Held h = it.next();
                            if (h.source == this) {
                                doomed.add(h);
                                it.remove();
                            }
                        }
                    }
                    doomed.forEach(h -> h.result.completeExceptionally(new IOException(peer.address() + ": source closed")));
                }
            };
        }
    }
}
