package io.chiral.core.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.api.PeerInfo;

/** The API's value types validate what they are given (they are built from network input). */
class ApiTypesTest {
    static final String H = "a".repeat(64);

    @Test
    void fileIdParsesAndNormalises() {
        assertEquals("ab".repeat(32), FileId.parse("AB".repeat(32)).hex());
        assertThrows(IllegalArgumentException.class, () -> FileId.parse("0x" + "a".repeat(62)));
        assertThrows(IllegalArgumentException.class, () -> FileId.parse("a".repeat(63)));
        assertThrows(IllegalArgumentException.class, () -> FileId.parse("g".repeat(64)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FileId.parse("hello"));
        assertTrue(e.getMessage().contains("not a CID"), e.getMessage());
        assertFalse(FileId.isCid(null));
    }

    @Test
    void metadataRejectsInconsistentChunkCounts() {
        assertThrows(IllegalArgumentException.class,
                () -> new FileMetadata(FileId.parse(H), "x", 300_000, 262_144, List.of(H), H, null));
        assertThrows(IllegalArgumentException.class,
                () -> new FileMetadata(FileId.parse(H), "x", 10, 0, List.of(H), H, null));
        assertThrows(IllegalArgumentException.class,
                () -> new FileMetadata(FileId.parse(H), "x", 10, 262_144, List.of("zz"), H, null));
        assertThrows(IllegalArgumentException.class,
                () -> new FileMetadata(FileId.parse(H), "x", -1, 262_144, List.of(), H, null));
        FileMetadata ok = new FileMetadata(FileId.parse(H), "x", 300_000, 262_144, List.of(H, H), H, null);
        assertEquals(262_144, ok.chunkLength(0));
        assertEquals(300_000 - 262_144, ok.chunkLength(1));
        assertThrows(IndexOutOfBoundsException.class, () -> ok.chunkLength(2));
    }

    @Test
    void namesFromPeersCannotEscapeTheDownloadDirectory() {
        assertEquals("passwd", FileMetadata.sanitizeName("../../etc/passwd"));
        assertEquals("evil.txt", FileMetadata.sanitizeName("..\\..\\evil.txt"));
        assertEquals("bashrc", FileMetadata.sanitizeName(".bashrc"));
        assertEquals("unnamed", FileMetadata.sanitizeName(".."));
        assertEquals("ab", FileMetadata.sanitizeName("a\u0000\nb"));
        assertEquals(255, FileMetadata.sanitizeName("x".repeat(1000)).length());
        // idempotent (found by ExtensionFuzzTest: ". b.bin" became " b.bin", then "b.bin" once sent on)
        assertEquals("b.bin", FileMetadata.sanitizeName(". b.bin"));
        assertEquals("x".repeat(254), FileMetadata.sanitizeName("x".repeat(254) + " y"));
        assertEquals("x".repeat(254), FileMetadata.sanitizeName("x".repeat(254) + "\uD83D\uDE00"));
        for (String raw : new String[] {". b.bin", " .. .a", "x".repeat(254) + " y", "x".repeat(254) + "\uD83D\uDE00", "./ .", "a\tb"}) {
            String once = FileMetadata.sanitizeName(raw);
            assertEquals(once, FileMetadata.sanitizeName(once), raw);
        }
    }

    @Test
    void peerAddressesParse() {
        PeerInfo p = PeerInfo.parse("127.0.0.1:4001", "http");
        assertEquals("http", p.protocol());
        assertEquals("127.0.0.1", p.host());
        assertEquals(4001, p.port());
        assertEquals("http://127.0.0.1:4001", p.label());
        assertEquals(p, PeerInfo.parse("http://127.0.0.1:4001/", "bittorrent"));
        assertEquals("::1", PeerInfo.parse("[::1]:80", "http").host());
        for (String bad : new String[] {"127.0.0.1", "host:", ":80", "h:0", "h:65536", "h:abc", "a b:1"}) {
            assertThrows(IllegalArgumentException.class, () -> PeerInfo.parse(bad, "http"), bad);
        }
    }
}
