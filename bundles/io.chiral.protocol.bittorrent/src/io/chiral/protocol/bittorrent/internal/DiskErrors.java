package io.chiral.protocol.bittorrent.internal;

import java.nio.file.AccessDeniedException;
import java.nio.file.FileStore;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** One-line descriptions of failed writes; a full disk is named by the mount point of its filesystem. */
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
     * {@code "PATH: no space left on the filesystem mounted at MOUNT (DEVICE)"} when the disk is full, else
     * {@code "PATH: REASON"}.
     */
    static String describe(Path path, Throwable e) {
        if (isDiskFull(e)) {
            return path + ": no space left on the filesystem mounted at " + mountPoint(path);
        }
        return path + ": " + reason(e);
    }

    private static String reason(Throwable e) {
        if (e instanceof FileSystemException f) {
            if (f.getReason() != null) {
                return f.getReason();
            }
            if (e instanceof AccessDeniedException) {
                return "permission denied";
            }
            if (e instanceof NoSuchFileException) {
                return "no such file or directory";
            }
            return e.getClass().getSimpleName();
        }
        String m = e.getMessage();
        return m == null || m.isBlank() ? e.getClass().getSimpleName() : m;
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
            return s.toString(); // the JDK's Unix file stores print "MOUNT_POINT (DEVICE)"
        } catch (java.io.IOException | RuntimeException x) {
            return "? (holding " + p + ")";
        }
    }
}
