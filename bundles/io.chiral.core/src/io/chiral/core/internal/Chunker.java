package io.chiral.core.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.function.LongConsumer;

import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;

/**
 * Computes a file's metadata: the SHA-256 of the whole file (its CID) and of every chunk, and the Merkle root. The
 * two digests are independent passes run side by side: the calling thread reads the file for the whole-file
 * digest while {@code cores - 1} lanes on {@code executor} each read a contiguous range of chunks into their own
 * buffer and hash them. No buffer crosses cores and nothing waits on a hand-off, so on two cores the whole costs
 * about one SHA-256 pass of wall time; the file is read twice, the second time from the page cache.
 */
public final class Chunker {
    private Chunker() {
    }

    static int lanes() {
        return Math.max(1, Runtime.getRuntime().availableProcessors() - 1);
    }

    public static FileMetadata describe(Path file, String name, int chunkSize, Executor executor, LongConsumer progress)
            throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            long count = FileMetadata.chunkCount(size, chunkSize);
            if (count > FileMetadata.MAX_CHUNKS) {
                throw new IOException(file + " is too large: " + size + " bytes (at most "
                        + (long) FileMetadata.MAX_CHUNKS * chunkSize + ")");
            }
            int chunks = (int) count;
            byte[][] hashes = new byte[chunks][];
            int lanes = (int) Math.min(lanes(), Math.max(1, chunks));
            List<CompletableFuture<Void>> work = new ArrayList<>(lanes);
            for (int lane = 0; lane < lanes; lane++) {
                int from = (int) ((long) chunks * lane / lanes);
                int to = (int) ((long) chunks * (lane + 1) / lanes);
                work.add(CompletableFuture.runAsync(() -> hashChunks(ch, file, size, chunkSize, from, to, hashes), executor));
            }
            MessageDigest whole = Hex.sha256();
            byte[] buf = new byte[chunkSize];
            for (long done = 0; done < size;) {
                int len = (int) Math.min(chunkSize, size - done);
                readFully(ch, ByteBuffer.wrap(buf, 0, len), done, file);
                whole.update(buf, 0, len);
                done += len;
                if (progress != null) {
                    progress.accept(done);
                }
            }
            for (CompletableFuture<Void> f : work) {
                join(f);
            }
            if (ch.size() != size) {
                throw new IOException(file + " changed size while it was being hashed");
            }
            List<String> hex = new ArrayList<>(chunks);
            List<byte[]> leaves = new ArrayList<>(chunks);
            for (byte[] h : hashes) {
                leaves.add(h);
                hex.add(Hex.hex(h));
            }
            return new FileMetadata(FileId.of(whole.digest()), name, size, chunkSize, hex, Hex.hex(Merkle.root(leaves)),
                    guessMime(file));
        }
    }

    private static void hashChunks(FileChannel ch, Path file, long size, int chunkSize, int from, int to, byte[][] out) {
        byte[] buf = new byte[chunkSize];
        MessageDigest md = Hex.sha256();
        try {
            for (int i = from; i < to; i++) {
                long off = (long) i * chunkSize;
                int len = (int) Math.min(chunkSize, size - off);
                readFully(ch, ByteBuffer.wrap(buf, 0, len), off, file);
                md.update(buf, 0, len);
                out[i] = md.digest();
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
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

    private static <T> T join(CompletableFuture<T> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while hashing", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof java.io.UncheckedIOException u) {
                throw u.getCause();
            }
            throw new IOException("hashing failed: " + e.getCause(), e.getCause());
        }
    }
}
