package io.chiral.core.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;

class ChunkerTest {
    static final int CHUNK = FileMetadata.DEFAULT_CHUNK_SIZE;
    static final ExecutorService POOL = Executors.newFixedThreadPool(2);

    @TempDir
    Path dir;

    @AfterAll
    static void stop() {
        POOL.shutdownNow();
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5, 20 * CHUNK})
    void cidChunksAndRootMatchAnIndependentComputation(int size) throws Exception {
        byte[] data = new byte[size];
        new Random(size).nextBytes(data);
        Path f = dir.resolve("f.bin");
        Files.write(f, data);

        FileMetadata m = Chunker.describe(f, "f.bin", CHUNK, POOL, null);

        assertEquals(FileId.of(MessageDigest.getInstance("SHA-256").digest(data)), m.id());
        assertEquals(size, m.size());
        assertEquals((size + CHUNK - 1) / CHUNK, m.chunkCount());
        List<byte[]> leaves = new ArrayList<>();
        for (int i = 0; i < m.chunkCount(); i++) {
            int off = i * CHUNK;
            int len = Math.min(CHUNK, size - off);
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(data, off, len);
            byte[] h = md.digest();
            leaves.add(h);
            assertEquals(Hex.hex(h), m.chunkHashes().get(i), "chunk " + i);
            assertEquals(len, m.chunkLength(i));
        }
        assertEquals(Hex.hex(Merkle.root(leaves)), m.merkleRoot());
        assertEquals("f.bin", m.name());
    }

    @Test
    void lowercaseHexWithoutPrefix() throws Exception {
        Path f = dir.resolve("a.txt");
        Files.writeString(f, "hello chiral");
        FileMetadata m = Chunker.describe(f, "a.txt", CHUNK, POOL, null);
        assertEquals(64, m.id().hex().length());
        assertEquals(m.id().hex().toLowerCase(), m.id().hex());
    }

    @Test
    void missingFileIsAnError() {
        assertThrows(java.nio.file.NoSuchFileException.class,
                () -> Chunker.describe(dir.resolve("nope"), "nope", CHUNK, POOL, null));
    }
}
