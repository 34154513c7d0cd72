package io.chiral.protocol.http.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.OptionalInt;
import java.util.logging.Logger;

/** The file a node remembers its HTTP port in, so that it listens on the same port after a restart. */
final class PortFile {
    private static final Logger LOG = Logger.getLogger(PortFile.class.getName());

    private PortFile() {
    }

    /** The port recorded in {@code file}; empty when there is none or it is unreadable (logged). */
    static OptionalInt read(Path file) {
        String text;
        try {
            if (Files.size(file) > 64) {
                LOG.warning("ignoring " + file + ": too large to hold a port number");
                return OptionalInt.empty();
            }
            text = Files.readString(file, StandardCharsets.US_ASCII).strip();
        } catch (NoSuchFileException e) {
            return OptionalInt.empty();
        } catch (IOException | RuntimeException e) {
            LOG.warning("ignoring unreadable port file " + file + ": " + e.getMessage());
            return OptionalInt.empty();
        }
        try {
            int port = Integer.parseInt(text);
            if (port >= 1 && port <= 65535) {
                return OptionalInt.of(port);
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        LOG.warning("ignoring port file " + file + ": '" + Route.abbreviate(text) + "' is not a port number");
        return OptionalInt.empty();
    }

    /** Records {@code port} in {@code file} atomically: a forced temp file in the same folder, then a rename. */
    static void write(Path file, int port) throws IOException {
        Path abs = file.toAbsolutePath();
        if (abs.getParent() != null) {
            Files.createDirectories(abs.getParent());
        }
        Path tmp = abs.resolveSibling(abs.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer b = ByteBuffer.wrap((port + "\n").getBytes(StandardCharsets.US_ASCII));
            while (b.hasRemaining()) {
                ch.write(b);
            }
            ch.force(true);
        }
        try {
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
