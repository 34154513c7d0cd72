package io.chiral.protocol.bittorrent.internal;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

import io.chiral.api.ChunkSource;
import io.chiral.api.FileMetadata;

/**
 * A Chiral provider of a single-file torrent's content, found through {@code info_hash_idx::<btih>} → CID in the
 * Chiral DHT and reached over another Chiral protocol (HTTP): it serves 256 KiB chunks by CID, which the torrent
 * maps onto its pieces. Each chunk is checked against its SHA-256 from the provider's manifest before its bytes
 * are used, and the assembled piece is checked against the torrent's SHA-1 like any other.
 */
final class ChiralSource {
    final ChunkSource source;
    final FileMetadata file;
    final String label;
    int inFlight;
    int failures;
    boolean dropped;

    ChiralSource(ChunkSource source, FileMetadata file) {
        this.source = source;
        this.file = file;
        this.label = source.peer().label();
    }

    /** Chunks covering bytes {@code [from, to)} of the file. */
    int firstChunk(long from) {
        return (int) (from / file.chunkSize());
    }

    int lastChunk(long toExclusive) {
        return (int) ((toExclusive - 1) / file.chunkSize());
    }

    /** Whether {@code chunk} (as the provider sent it) matches the manifest. */
    boolean verify(int index, ByteBuffer chunk) {
        if (chunk.remaining() != file.chunkLength(index)) {
            return false;
        }
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(chunk.duplicate());
            return HexFormat.of().formatHex(md.digest()).equals(file.chunkHashes().get(index));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public String toString() {
        return label;
    }
}
