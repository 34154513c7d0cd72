package io.chiral.core.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.function.LongConsumer;

import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;

/**
 * Computes a file's metadata in one read: the SHA-256 of the whole file (its CID) on the calling thread while
 * the chunk hashes are computed on {@code executor}, so that on two cores the two digests run side by side and
 * the whole is about as fast as a single SHA-256 pass. Chunk hashes run on one lane per remaining core (a lane
 * hashes its chunks one after another), so they never take the core the whole-file digest runs on, while a few
 * chunks of read-ahead keep every lane busy.
 */
public final class Chunker {
    static int lanes() {
        return Math.max(1, Runtime.getRuntime().availableProcessors() - 1);
    }

    private Chunker() {
    }

    public static FileMetadata describe(Path file, String name, int chunkSize, Executor executor, LongConsumer progress)
            throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            long chunks = FileMetadata.chunkCount(size, chunkSize);
            if (chunks > FileMetadata.MAX_CHUNKS) {
                throw new IOException(file + " is too large: " + size + " bytes (at most "
                        + (long) FileMetadata.MAX_CHUNKS * chunkSize + ")");
            }
            MessageDigest whole = Hex.sha256();
            List<CompletableFuture<byte[]>> hashes = new ArrayList<>((int) chunks);
            Queue<byte[]> free = new ConcurrentLinkedQueue<>();
            Deque<CompletableFuture<byte[]>> pending = new ArrayDeque<>();
            long done = 0;
            int lanes = lanes();
            int window = 2 * lanes + 1;
            @SuppressWarnings("unchecked")
            CompletableFuture<byte[]>[] tails = new CompletableFuture[lanes];
            for (int i = 0; i < chunks; i++) {
                int len = (int) Math.min(chunkSize, size - done);
                byte[] pooled = free.poll();
                byte[] buf = pooled != null ? pooled : new byte[chunkSize];
                readFully(ch, ByteBuffer.wrap(buf, 0, len), done, file);
                whole.update(buf, 0, len);
                // bound the read-ahead (and the buffers) to a few chunks per lane
                while (pending.size() >= window) {
                    join(pending.removeFirst());
                }
                int lane = i % lanes;
                CompletableFuture<byte[]> prev = tails[lane];
                java.util.function.Supplier<byte[]> hash = () -> {
                    MessageDigest md = Hex.sha256();
                    md.update(buf, 0, len);
                    return md.digest();
                };
                // a busy lane continues on the thread that finishes its previous chunk (no hand-off, no wake-up);
                // an idle lane starts on the executor
                CompletableFuture<byte[]> f = prev == null || prev.isDone() ? CompletableFuture.supplyAsync(hash, executor)
                        : prev.handle((ignored, e) -> hash.get());
                tails[lane] = f;
                // recycle the buffer once its chunk is hashed (the whole-file digest already consumed it)
                CompletableFuture<byte[]> recycled = f.whenComplete((r, e) -> free.add(buf));
                pending.addLast(recycled);
                hashes.add(f);
                done += len;
                if (progress != null) {
                    progress.accept(done);
                }
            }
            List<String> hex = new ArrayList<>(hashes.size());
            List<byte[]> leaves = new ArrayList<>(hashes.size());
            for (CompletableFuture<byte[]> f : hashes) {
                byte[] h = join(f);
                leaves.add(h);
                hex.add(Hex.hex(h));
            }
            if (ch.size() != size) {
                throw new IOException(file + " changed size while it was being hashed");
            }
            return new FileMetadata(FileId.of(whole.digest()), name, size, chunkSize, hex, Hex.hex(Merkle.root(leaves)),
                    guessMime(file));
        }
    }

    static String guessMime(Path file) {
        try {
            String t = Files.probeContentType(file);
            return t == null ? "application/octet-stream" : t;
        } catch (IOException e) {
            return "application/octet-stream";
        }
    }

    static void readFully(FileChannel ch, ByteBuffer buf, long position, Path file) throws IOException {
        long pos = position;
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos);
            if (n < 0) {
                throw new IOException(file + " ended early at byte " + pos + " (truncated while reading?)");
            }
            pos += n;
        }
    }

    private static byte[] join(CompletableFuture<byte[]> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while hashing", e);
        } catch (ExecutionException e) {
            throw new IOException("hashing failed: " + e.getCause(), e.getCause());
        }
    }
}
