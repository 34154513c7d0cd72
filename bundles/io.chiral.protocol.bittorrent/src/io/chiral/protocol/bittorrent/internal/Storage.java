package io.chiral.protocol.bittorrent.internal;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;

/**
 * The files of one torrent on disk, addressed as the torrent's piece stream. The data lives at a top path: the file
 * of a single-file torrent, the directory holding the tree of a multi-file one. Pad files (BEP 47) are never
 * written: they read as zeros. Files are opened on first use (read-only when seeding a finished torrent) and
 * closed by {@link #close}, after which they are never opened again. Thread-safe: positional reads and writes only.
 *
 * <p>Nothing unverified sits under the torrent's own name: a download writes below {@link #partTop} — the part file
 * {@code .NAME.<btih>.chiral-part} of a single-file torrent, or the hidden directory of that name holding a
 * multi-file torrent's tree — and the torrent renames it to {@code NAME} (or {@code NAME (1)} … when that is taken)
 * once every piece is verified and the zero-length files are created.
 *
 * <p>A finished torrent's storage is {@linkplain #seal sealed}: the size and modification time of each file are
 * recorded, and every read is followed by a stat of the file it read; a file that changed (another size or
 * modification time, or gone) fails the read with {@link ChangedException}, so a seeder never serves bytes that
 * are not the ones it hashed.
 */
final class Storage implements Closeable {
    /** A sealed file changed on disk after the torrent finished (or was shared). */
    static final class ChangedException extends IOException {
        private static final long serialVersionUID = 1L;

        ChangedException(String message) {
            super(message);
        }
    }

    private final Metainfo meta;
    private final Path[] paths;
    private final FileChannel[] channels;
    private final boolean writable;
    private final Path top;
    private boolean closed;
    /** Size and modification time of each file when sealed; null until then. */
    private volatile long[] sealedSizes;
    private volatile FileTime[] sealedTimes;
    private volatile String changed;

    /** Storage of {@code meta} at {@code top}: the file of a single-file torrent, the directory of a multi-file one. */
    Storage(Metainfo meta, Path top, boolean writable) {
        this.meta = meta;
        this.writable = writable;
        this.top = top;
        List<Metainfo.FileEntry> files = meta.files();
        paths = new Path[files.size()];
        channels = new FileChannel[files.size()];
        for (int i = 0; i < paths.length; i++) {
            Path p;
            if (meta.singleFile()) {
                // (a stored file shared as a torrent keeps its own name, whatever the torrent calls it)
                p = top;
            } else {
                p = top;
                for (String part : files.get(i).path()) {
                    p = p.resolve(part);
                }
                if (!p.normalize().startsWith(top.normalize()) || p.normalize().equals(top.normalize())) {
                    throw new IllegalArgumentException("torrent path escapes the download directory: " + files.get(i).path());
                }
            }
            paths[i] = p;
        }
    }

    /** Storage that serves one existing file (a stored file shared as a single-file torrent). */
    static Storage ofFile(Metainfo meta, Path file) {
        if (!meta.singleFile()) {
            throw new IllegalArgumentException("not a single-file torrent");
        }
        return new Storage(meta, file, false);
    }

    /** Where the torrent's data is once complete: {@code saveDir/NAME}. */
    static Path finalTop(Metainfo meta, Path saveDir) {
        return saveDir.resolve(meta.name());
    }

    /**
     * Where a download writes until every piece is verified: {@code saveDir/.NAME.<btih>.chiral-part}, a file for a
     * single-file torrent, a directory holding the tree for a multi-file one (the name is shortened when long, so
     * that the part name stays within the 255 bytes a file name may have).
     */
    static Path partTop(Metainfo meta, Path saveDir) {
        String name = meta.name();
        while (name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 180) {
            int cut = name.offsetByCodePoints(name.length(), -1);
            name = name.substring(0, cut);
        }
        return saveDir.resolve("." + name + "." + meta.infoHashHex() + ".chiral-part");
    }

    /** {@code dir/name}, or {@code dir/base (1).ext} … when that exists: a finished download never replaces a file. */
    static Path uniqueTarget(Path dir, String name, boolean directory) {
        Path p = dir.resolve(name);
        if (!Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return p;
        }
        int dot = directory ? -1 : name.lastIndexOf('.');
        String base = dot > 0 ? name.substring(0, dot) : name;
        String ext = dot > 0 ? name.substring(dot) : "";
        for (int i = 1; ; i++) {
            p = dir.resolve(base + " (" + i + ")" + ext);
            if (!Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                return p;
            }
        }
    }

    Path path(int i) {
        return paths[i];
    }

    /** The non-padding files, in torrent order. */
    List<Path> files() {
        List<Path> out = new ArrayList<>();
        for (int i = 0; i < paths.length; i++) {
            if (!meta.files().get(i).padding()) {
                out.add(path(i));
            }
        }
        return out;
    }

    /** What a user opens: the file of a single-file torrent, the directory of a multi-file one. */
    Path top() {
        return top;
    }

    /** Whether every non-padding file is there with the torrent's size for it. */
    boolean sizesMatch() {
        for (int i = 0; i < paths.length; i++) {
            Metainfo.FileEntry e = meta.files().get(i);
            if (e.padding()) {
                continue;
            }
            try {
                if (!Files.isRegularFile(paths[i]) || Files.size(paths[i]) != e.length()) {
                    return false;
                }
            } catch (IOException x) {
                return false;
            }
        }
        return true;
    }

    /** Creates the zero-length files (and their directories) of the torrent, which no piece ever writes. */
    void createEmptyFiles() throws IOException {
        for (int i = 0; i < paths.length; i++) {
            Metainfo.FileEntry e = meta.files().get(i);
            if (e.length() == 0 && !e.padding()) {
                Path p = paths[i];
                try {
                    Files.createDirectories(p.toAbsolutePath().getParent());
                    if (!Files.exists(p)) {
                        Files.createFile(p);
                    }
                } catch (IOException x) {
                    throw new IOException(DiskErrors.describe(p, x), x);
                }
            }
        }
    }

    /** Records each file's size and modification time: from now on a read of a changed file fails. */
    void seal() throws IOException {
        long[] sizes = new long[paths.length];
        FileTime[] times = new FileTime[paths.length];
        for (int i = 0; i < paths.length; i++) {
            if (meta.files().get(i).padding() || meta.files().get(i).length() == 0) {
                continue;
            }
            BasicFileAttributes a = Files.readAttributes(paths[i], BasicFileAttributes.class);
            sizes[i] = a.size();
            times[i] = a.lastModifiedTime();
        }
        sealedSizes = sizes;
        sealedTimes = times;
    }

    /** Why the sealed files no longer serve (a file changed on disk), or null. */
    String changed() {
        return changed;
    }

    /** After a read of file {@code i}: fails when the storage is sealed and the file is not what was sealed. */
    private void checkUnchanged(int i) throws ChangedException {
        FileTime[] times = sealedTimes;
        if (times == null || times[i] == null) {
            return;
        }
        String why = changed;
        if (why == null) {
            try {
                BasicFileAttributes a = Files.readAttributes(paths[i], BasicFileAttributes.class);
                if (a.size() != sealedSizes[i] || !a.lastModifiedTime().equals(times[i])) {
                    why = paths[i] + " changed on disk (size " + sealedSizes[i] + " -> " + a.size() + ", modified "
                            + times[i] + " -> " + a.lastModifiedTime() + ")";
                }
            } catch (IOException e) {
                why = paths[i] + " is gone (" + e.getMessage() + ")";
            }
            if (why == null) {
                return;
            }
            changed = why;
        }
        throw new ChangedException(why);
    }

    private synchronized FileChannel channel(int i) throws IOException {
        FileChannel c = channels[i];
        if (c == null || !c.isOpen()) {
            if (closed) {
                throw new java.nio.channels.ClosedChannelException();
            }
            Path p = path(i);
            OpenOption[] opts = writable
                    ? new OpenOption[] {StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.CREATE}
                    : new OpenOption[] {StandardOpenOption.READ};
            if (writable) {
                Files.createDirectories(p.toAbsolutePath().getParent());
            }
            c = FileChannel.open(p, opts);
            channels[i] = c;
        }
        return c;
    }

    /** Index of the file holding piece-stream offset {@code offset}. */
    private int fileAt(long offset) {
        List<Metainfo.FileEntry> files = meta.files();
        int lo = 0;
        int hi = files.size() - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (files.get(mid).offset() <= offset) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        // skip empty files that share the offset with the next one
        while (lo < files.size() - 1 && files.get(lo).offset() + files.get(lo).length() <= offset) {
            lo++;
        }
        return lo;
    }

    /** Writes a verified piece. */
    void writePiece(int piece, byte[] data) throws IOException {
        long offset = (long) piece * meta.pieceLength();
        int done = 0;
        int f = fileAt(offset);
        while (done < data.length) {
            Metainfo.FileEntry e = meta.files().get(f);
            long inFile = offset + done - e.offset();
            int n = (int) Math.min(data.length - done, e.length() - inFile);
            if (n > 0 && !e.padding()) {
                ByteBuffer b = ByteBuffer.wrap(data, done, n);
                try {
                    FileChannel c = channel(f);
                    long pos = inFile;
                    while (b.hasRemaining()) {
                        pos += c.write(b, pos);
                    }
                } catch (java.nio.channels.ClosedChannelException x) {
                    throw x;
                } catch (IOException x) {
                    throw new IOException(DiskErrors.describe(path(f), x), x);
                }
            }
            done += Math.max(n, 0);
            f++;
            if (f >= meta.files().size() && done < data.length) {
                throw new IOException("piece " + piece + " runs past the last file");
            }
        }
    }

    /** Reads {@code length} bytes at {@code begin} of {@code piece} into a new buffer from {@code alloc}. */
    ByteBuf read(int piece, int begin, int length, ByteBufAllocator alloc) throws IOException {
        ByteBuf buf = alloc.directBuffer(length);
        try {
            long offset = (long) piece * meta.pieceLength() + begin;
            int f = fileAt(offset);
            while (buf.writableBytes() > 0) {
                Metainfo.FileEntry e = meta.files().get(f);
                long inFile = offset + buf.writerIndex() - e.offset();
                int n = (int) Math.min(buf.writableBytes(), e.length() - inFile);
                if (n > 0) {
                    if (e.padding()) {
                        buf.writeZero(n);
                    } else {
                        FileChannel c;
                        try {
                            c = channel(f);
                        } catch (java.nio.file.NoSuchFileException x) {
                            checkUnchanged(f); // a sealed file that is gone: changed
                            throw x;
                        }
                        int target = buf.writerIndex() + n;
                        while (buf.writerIndex() < target) {
                            int r = buf.writeBytes(c, inFile + (buf.writerIndex() - (target - n)), target - buf.writerIndex());
                            if (r < 0) {
                                checkUnchanged(f);
                                throw new IOException(path(f) + " is shorter than the torrent says");
                            }
                        }
                        checkUnchanged(f);
                    }
                }
                f++;
                if (f >= meta.files().size() && buf.writableBytes() > 0) {
                    throw new IOException("read past the end of the torrent");
                }
            }
            return buf;
        } catch (IOException | RuntimeException e) {
            buf.release();
            throw e;
        }
    }

    /** Whether the piece on disk matches its SHA-1 (false when a file is missing or short). */
    boolean verify(int piece, MessageDigest sha1) {
        int size = meta.pieceSize(piece);
        ByteBuf b = null;
        try {
            b = read(piece, 0, size, io.netty.buffer.UnpooledByteBufAllocator.DEFAULT);
            sha1.reset();
            sha1.update(b.nioBuffer());
            return Arrays.equals(sha1.digest(), meta.pieceHash(piece));
        } catch (IOException | RuntimeException e) {
            return false;
        } finally {
            if (b != null) {
                b.release();
            }
        }
    }

    /** Whether every file exists (pieces may still be missing). */
    boolean anyFileExists() {
        for (Path p : files()) {
            if (Files.exists(p)) {
                return true;
            }
        }
        return false;
    }

    @Override
    public synchronized void close() {
        closed = true;
        for (int i = 0; i < channels.length; i++) {
            FileChannel c = channels[i];
            if (c != null) {
                try {
                    if (writable) {
                        c.force(false);
                    }
                    c.close();
                } catch (IOException e) {
                    // closing: nothing left to do with it
                }
                channels[i] = null;
            }
        }
    }

    /** Forces written data to disk (before the resume bitmap claims it). */
    synchronized void force() throws IOException {
        for (int i = 0; i < channels.length; i++) {
            FileChannel c = channels[i];
            if (c != null && c.isOpen() && writable) {
                try {
                    c.force(false);
                } catch (IOException x) {
                    throw new IOException(DiskErrors.describe(path(i), x), x);
                }
            }
        }
    }
}
