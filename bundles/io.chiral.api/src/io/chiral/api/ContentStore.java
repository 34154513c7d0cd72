package io.chiral.api;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * The node's files: complete files it can seed and the metadata of each. Files are not copied: the store
 * records where a file lives and refuses to serve it once it changed on disk (size or modification time).
 */
public interface ContentStore {
    /**
     * Hashes {@code file} (SHA-256 CID, chunk hashes, Merkle root) and records it for seeding. Links are resolved:
     * the store records and serves the real file. Throws {@link java.nio.file.NoSuchFileException} and
     * {@link java.nio.file.AccessDeniedException} with the path as given, and another
     * {@link java.nio.file.FileSystemException} for what is not a regular file of a real file system (directories,
     * devices, FIFOs, sockets, {@code /proc}).
     */
    FileMetadata add(Path file) throws IOException;

    Optional<FileMetadata> metadata(FileId id);

    /** Complete, verified files. */
    List<FileMetadata> list();

    /**
     * The path of a complete file, if it is still as it was when added or downloaded; a file that changed on disk
     * is dropped from the store and this returns empty.
     */
    Optional<Path> contentPath(FileId id);

    /** Forgets a file (the file itself is left alone). Returns false when it was not in the store. */
    boolean remove(FileId id) throws IOException;
}
