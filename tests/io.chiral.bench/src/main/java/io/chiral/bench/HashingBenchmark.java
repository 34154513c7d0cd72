package io.chiral.bench;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import io.chiral.api.FileMetadata;
import io.chiral.core.internal.Chunker;

/**
 * Chunking + hashing a file (whole-file SHA-256 for the CID, SHA-256 per 256 KiB chunk, Merkle root) against one
 * raw SHA-256 pass over the same bytes read the same way. The file sits in the page cache, so both measure
 * hashing, not the disk. Time per operation over {@code size} bytes; the runner script turns it into MB/s.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 3)
@Fork(1)
public class HashingBenchmark {
    @Param({"268435456"})
    public long size;

    private Path file;
    private ExecutorService pool;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        file = Files.createTempFile("chiral-bench", ".bin");
        byte[] buf = new byte[1 << 20];
        Random r = new Random(1);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            for (long done = 0; done < size; done += buf.length) {
                r.nextBytes(buf);
                ch.write(ByteBuffer.wrap(buf, 0, (int) Math.min(buf.length, size - done)));
            }
        }
        pool = Executors.newFixedThreadPool(Runtime.getRuntime().availableProcessors());
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        pool.shutdownNow();
        Files.deleteIfExists(file);
    }

    /** What {@code chiral add} does: CID + chunk hashes + Merkle root in one read. */
    @Benchmark
    public FileMetadata chunkAndHash() throws IOException {
        return Chunker.describe(file, "bench.bin", FileMetadata.DEFAULT_CHUNK_SIZE, pool, null);
    }

    /** The yardstick: one SHA-256 over the file, read in 256 KiB blocks. */
    @Benchmark
    public byte[] rawSha256() throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        byte[] buf = new byte[FileMetadata.DEFAULT_CHUNK_SIZE];
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long pos = 0;
            while (true) {
                ByteBuffer b = ByteBuffer.wrap(buf);
                int n = ch.read(b, pos);
                if (n <= 0) {
                    break;
                }
                md.update(buf, 0, n);
                pos += n;
            }
        }
        return md.digest();
    }
}
