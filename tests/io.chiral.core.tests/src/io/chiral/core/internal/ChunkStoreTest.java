package io.chiral.core.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.BitSet;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.chiral.api.FileMetadata;

class ChunkStoreTest {
    @TempDir
    Path dir;

    private Path randomFile(String name, int size) throws IOException {
        byte[] b = new byte[size];
        new Random(name.hashCode()).nextBytes(b);
        Path p = dir.resolve(name);
        Files.write(p, b);
        return p;
    }

    @Test
    void addedFilesSurviveARestartOfTheStore() throws Exception {
        Path f = randomFile("movie.bin", 700_000);
        FileMetadata m;
        ChunkStore s = new ChunkStore(dir.resolve("data"), 2);
        try {
            m = s.add(f);
            assertEquals(List.of(m), s.list());
            assertEquals(f.toAbsolutePath(), s.contentPath(m.id()).orElseThrow());
        } finally {
            s.close();
        }
        ChunkStore again = new ChunkStore(dir.resolve("data"), 2);
        try {
            assertEquals(m, again.metadata(m.id()).orElseThrow());
            assertTrue(again.remove(m.id()));
            assertFalse(again.remove(m.id()));
            assertTrue(again.list().isEmpty());
            assertTrue(Files.exists(f), "removing from the store leaves the file alone");
        } finally {
            again.close();
        }
    }

    @Test
    void aFileChangedOnDiskIsNoLongerServed() throws Exception {
        Path f = randomFile("doc.bin", 300_000);
        ChunkStore s = new ChunkStore(dir.resolve("data"), 2);
        try {
            FileMetadata m = s.add(f);
            Files.setLastModifiedTime(f, FileTime.fromMillis(Files.getLastModifiedTime(f).toMillis() + 5_000));
            assertTrue(s.contentPath(m.id()).isEmpty());
            assertTrue(s.list().isEmpty());
        } finally {
            s.close();
        }
    }

    @Test
    void addingWhatIsNotAFileFailsClearly() throws Exception {
        ChunkStore s = new ChunkStore(dir.resolve("data"), 2);
        try {
            IOException e = assertThrows(IOException.class, () -> s.add(dir.resolve("missing.bin")));
            assertTrue(e.getMessage().contains("missing.bin"), e.getMessage());
            assertThrows(IOException.class, () -> s.add(dir));
        } finally {
            s.close();
        }
    }

    @Test
    void bitmapAndDownloadRecordRoundTripAndRejectMismatches() throws Exception {
        Path f = randomFile("x.bin", 1_000_000);
        ChunkStore s = new ChunkStore(dir.resolve("data"), 2);
        try {
            FileMetadata m = Chunker.describe(f, "x.bin", FileMetadata.DEFAULT_CHUNK_SIZE, s.workers(), null);
            BitSet bits = new BitSet();
            bits.set(0);
            bits.set(3);
            s.writeBitmap(m.id(), bits, m.chunkCount());
            assertEquals(bits, s.readBitmap(m.id(), m.chunkCount()));
            assertTrue(s.readBitmap(m.id(), m.chunkCount() + 1).isEmpty(), "a bitmap for another chunk count is ignored");
            Files.write(dir.resolve("data/store/" + m.id().hex() + ".bitmap"), new byte[] {1, 2, 3});
            assertTrue(s.readBitmap(m.id(), m.chunkCount()).isEmpty(), "a damaged bitmap is ignored");

            var rec = new ChunkStore.DownloadRecord(m, m.id(), "/tmp/x.part", "/tmp", List.of("http://127.0.0.1:1"));
            s.saveDownload(rec);
            assertEquals(rec, s.download(m.id()).orElseThrow());
            assertEquals(List.of(rec), s.downloads());
            assertEquals(m, s.metadata(m.id()).orElseThrow(), "metadata of a partial download is known");
            s.deleteDownload(m.id());
            assertTrue(s.downloads().isEmpty());
        } finally {
            s.close();
        }
    }

    @Test
    void uniqueTargetNeverOverwrites() throws Exception {
        Files.writeString(dir.resolve("a.txt"), "1");
        Files.writeString(dir.resolve("a (1).txt"), "2");
        assertEquals(dir.resolve("a (2).txt"), Download.uniqueTarget(dir, "a.txt"));
        assertEquals(dir.resolve("b"), Download.uniqueTarget(dir, "b"));
    }
}
