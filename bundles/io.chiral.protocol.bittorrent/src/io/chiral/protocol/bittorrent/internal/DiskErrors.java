package io.chiral.protocol.bittorrent.internal;

import java.io.IOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;

/** One-line descriptions of failed writes that name the full filesystem (its mount point) on ENOSPC. */
final class DiskErrors {
    private DiskErrors() {
    }

    /** Whether {@code e} (or a cause) is "No space left on device" / "Disk quota exceeded". */
    static boolean isDiskFull(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = t.getMessage();
            if (m != null && (m.contains("No space left on device") || m.contains("Disk quota exceeded"))) {
                return true;
            }
        }
        return false;
    }

    /**
     * What went wrong writing {@code path}: when the disk is full, {@code "the filesystem mounted at M (device) is
     * full (No space left on device writing PATH)"}; otherwise the exception's message and the path.
     */
    static String describe(Path path, IOException e) {
        String m = e.getMessage() == null || e.getMessage().isBlank() ? e.getClass().getSimpleName() : e.getMessage();
        if (!isDiskFull(e)) {
            return m.contains(path.toString()) ? m : path + ": " + m;
        }
        return "the filesystem mounted at " + mountPoint(path) + " is full (No space left on device writing " + path + ")";
    }

    /** The mount point of the filesystem holding {@code path} (or its nearest existing ancestor), with its device. */
    static String mountPoint(Path path) {
        Path p = path.toAbsolutePath();
        while (p != null && !Files.exists(p)) {
            p = p.getParent();
        }
        if (p == null) {
            return "?";
        }
        try {
            FileStore s = Files.getFileStore(p);
            // the JDK's Unix FileStore prints "MOUNT_POINT (DEVICE)"
            return s.toString();
        } catch (IOException | RuntimeException x) {
            return "? (" + p + ")";
        }
    }
}
