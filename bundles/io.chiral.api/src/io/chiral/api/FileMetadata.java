package io.chiral.api;

import java.util.List;
import java.util.Objects;

/**
 * Everything needed to fetch and verify a file: its CID, name, size, chunk size, the SHA-256 of every chunk
 * (64 hex each, in order) and the Merkle root over them. Instances are validated on construction, so a
 * {@code FileMetadata} that exists is internally consistent (chunk count matches size; hashes well formed).
 */
public record FileMetadata(FileId id, String name, long size, int chunkSize, List<String> chunkHashes,
        String merkleRoot, String mimeType) {

    /** The chunk size Chiral uses: 256 KiB. */
    public static final int DEFAULT_CHUNK_SIZE = 256 * 1024;
    /** Largest chunk size accepted from a peer (4 MiB). */
    public static final int MAX_CHUNK_SIZE = 4 * 1024 * 1024;
    /** Most chunks one file may have (a bound against hostile metadata): 2^22, i.e. 1 TiB at 256 KiB. */
    public static final int MAX_CHUNKS = 1 << 22;
    /** Longest file name accepted. */
    public static final int MAX_NAME_LENGTH = 255;

    public FileMetadata {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(chunkHashes, "chunkHashes");
        Objects.requireNonNull(merkleRoot, "merkleRoot");
        name = sanitizeName(name == null || name.isBlank() ? id.hex() : name);
        mimeType = mimeType == null || mimeType.isBlank() ? "application/octet-stream" : mimeType;
        if (size < 0) {
            throw new IllegalArgumentException("negative file size " + size);
        }
        if (chunkSize <= 0 || chunkSize > MAX_CHUNK_SIZE) {
            throw new IllegalArgumentException("chunk size " + chunkSize + " out of range (1.." + MAX_CHUNK_SIZE + ")");
        }
        long expected = chunkCount(size, chunkSize);
        if (expected > MAX_CHUNKS) {
            throw new IllegalArgumentException("file of " + size + " bytes has too many chunks (" + expected + " > " + MAX_CHUNKS + ")");
        }
        if (chunkHashes.size() != expected) {
            throw new IllegalArgumentException("metadata lists " + chunkHashes.size() + " chunk hashes but a file of "
                    + size + " bytes has " + expected + " chunks of " + chunkSize);
        }
        chunkHashes = List.copyOf(chunkHashes);
        for (String h : chunkHashes) {
            if (!FileId.isCid(h)) {
                throw new IllegalArgumentException("malformed chunk hash in metadata");
            }
        }
        if (!FileId.isCid(merkleRoot)) {
            throw new IllegalArgumentException("malformed Merkle root in metadata");
        }
    }

    public static long chunkCount(long size, int chunkSize) {
        return (size + chunkSize - 1) / chunkSize;
    }

    public int chunkCount() {
        return chunkHashes.size();
    }

    public long chunkOffset(int index) {
        return (long) index * chunkSize;
    }

    /** Length of chunk {@code index}: {@link #chunkSize} except for a shorter last chunk. */
    public int chunkLength(int index) {
        Objects.checkIndex(index, chunkCount());
        return (int) Math.min(chunkSize, size - chunkOffset(index));
    }

    /**
     * Makes a received file name safe to create in a download directory: the last path element only,
     * no control characters, no leading dots that would hide it, no surrounding white space, at most
     * {@link #MAX_NAME_LENGTH} characters (never half a surrogate pair). Sanitizing a sanitized name changes nothing.
     */
    public static String sanitizeName(String raw) {
        String s = raw.replace('\\', '/');
        s = s.substring(s.lastIndexOf('/') + 1);
        StringBuilder b = new StringBuilder(s.length());
        s.codePoints().filter(cp -> cp >= 0x20 && cp != 0x7f).forEach(b::appendCodePoint);
        String out = b.toString().strip();
        while (out.startsWith(".")) {
            out = out.substring(1).strip(); // ". x" must not come out as " x" (and " x" as "x" the next time)
        }
        if (out.length() > MAX_NAME_LENGTH) {
            int end = Character.isHighSurrogate(out.charAt(MAX_NAME_LENGTH - 1)) ? MAX_NAME_LENGTH - 1 : MAX_NAME_LENGTH;
            out = out.substring(0, end).strip();
        }
        return out.isEmpty() ? "unnamed" : out;
    }
}
