package io.chiral.protocol.bittorrent.internal;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;

/**
 * The files of one torrent on disk, addressed as the torrent's piece stream. A single-file torrent is the file
 * {@code root/name}; a multi-file torrent is the tree below {@code root/name/}. Pad files (BEP 47) are never
 * written: they read as zeros. Files are opened on first use (read-only when seeding a finished torrent) and
 * closed by {@link #close}. Thread-safe: positional reads and writes only.
 */
final class Storage implements Closeable {
    private final Metainfo meta;
    private final Path[] paths;
    private final FileChannel[] channels;
    private final boolean writable;
    private final Path base;

    /** Storage of {@code meta} below {@code root}. */
    Storage(Metainfo meta, Path root, boolean writable) {
        this(meta, root, writable, null);
    }

    private Storage(Metainfo meta, Path root, boolean writable, Path onlyFile) {
        this.meta = meta;
        this.writable = writable;
        List<Metainfo.FileEntry> files = meta.files();
        paths = new Path[files.size()];
        channels = new FileChannel[files.size()];
        base = meta.singleFile() ? root : root.resolve(meta.name());
        // (a stored file shared as a torrent keeps its own name, whatever the torrent calls it)
        for (int i = 0; i < paths.length; i++) {
            Path p = base;
            for (String part : files.get(i).path()) {
                p = p.resolve(part);
            }
            if (onlyFile != null) {
                p = onlyFile;
            } else if (!p.normalize().startsWith(root.normalize())) {
                throw new IllegalArgumentException("torrent path escapes the download directory: " + files.get(i).path());
            }
            paths[i] = p;
        }
    }

    /** Storage that serves one existing file (a stored file shared as a single-file torrent). */
    static Storage ofFile(Metainfo meta, Path file) {
        if (!meta.singleFile()) {
            throw new IllegalArgumentException("not a single-file torrent");
        }
        return new Storage(meta, file.getParent(), false, file);
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
        return meta.singleFile() ? path(0) : base;
    }

    private synchronized FileChannel channel(int i) throws IOException {
        FileChannel c = channels[i];
        if (c == null || !c.isOpen()) {
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
                FileChannel c = channel(f);
                long pos = inFile;
                while (b.hasRemaining()) {
                    pos += c.write(b, pos);
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
                        FileChannel c = channel(f);
                        int target = buf.writerIndex() + n;
                        while (buf.writerIndex() < target) {
                            int r = buf.writeBytes(c, inFile + (buf.writerIndex() - (target - n)), target - buf.writerIndex());
                            if (r < 0) {
                                throw new IOException(path(f) + " is shorter than the torrent says");
                            }
                        }
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
        for (FileChannel c : channels) {
            if (c != null && c.isOpen() && writable) {
                c.force(false);
            }
        }
    }
}
