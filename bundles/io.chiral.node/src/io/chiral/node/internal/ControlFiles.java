package io.chiral.node.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.logging.Logger;

import com.google.gson.JsonObject;

/**
 * The control channel's files in {@code <dataDir>/config}: the token ({@code control.token}), the port to reuse
 * ({@code control.port}) and the discovery file clients read ({@code control.json}). Every write is atomic
 * (a private temp file in the same folder, forced, then renamed), and every file is readable by its owner only.
 */
final class ControlFiles {
    private static final Logger LOG = Logger.getLogger(ControlFiles.class.getName());
    static final String TOKEN = "control.token";
    static final String PORT = "control.port";
    static final String DISCOVERY = "control.json";
    private static final int MAX_SMALL_FILE = 4096;

    private final Path configDir;

    ControlFiles(Path dataDir) throws IOException {
        this.configDir = dataDir.resolve("config");
        Files.createDirectories(configDir);
    }

    Path configDir() {
        return configDir;
    }

    /** The token clients must present; 64 hex characters, created once. A malformed token file is replaced. */
    String readOrCreateToken() throws IOException {
        Path file = configDir.resolve(TOKEN);
        String existing = readSmall(file);
        if (existing != null) {
            String t = existing.strip();
            if (t.length() == 64 && t.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
                return t;
            }
            LOG.warning(file + " does not hold a 64-hex token: replacing it (clients read the new one)");
        }
        byte[] random = new byte[32];
        new SecureRandom().nextBytes(random);
        String token = HexFormat.of().formatHex(random);
        writeAtomically(file, (token + "\n").getBytes(StandardCharsets.US_ASCII));
        return token;
    }

    /** The port the previous run bound, or 0 when none is remembered. */
    int rememberedPort() {
        try {
            String s = readSmall(configDir.resolve(PORT));
            if (s == null) {
                return 0;
            }
            int p = Integer.parseInt(s.strip());
            return p > 0 && p <= 65535 ? p : 0;
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
    }

    void rememberPort(int port) throws IOException {
        writeAtomically(configDir.resolve(PORT), (port + "\n").getBytes(StandardCharsets.US_ASCII));
    }

    void writeDiscovery(int port, long pid) throws IOException {
        JsonObject o = new JsonObject();
        o.addProperty("port", port);
        o.addProperty("pid", pid);
        writeAtomically(configDir.resolve(DISCOVERY), ControlJson.GSON.toJson(o).getBytes(StandardCharsets.UTF_8));
    }

    void deleteDiscovery() {
        try {
            Files.deleteIfExists(configDir.resolve(DISCOVERY));
        } catch (IOException e) {
            LOG.warning("cannot delete " + configDir.resolve(DISCOVERY) + ": " + e.getMessage());
        }
    }

    /** Text of a small file, or null when it does not exist. */
    static String readSmall(Path file) throws IOException {
        if (!Files.exists(file)) {
            return null;
        }
        if (Files.size(file) > MAX_SMALL_FILE) {
            throw new IOException(file + " is larger than " + MAX_SMALL_FILE + " bytes");
        }
        return Files.readString(file, StandardCharsets.UTF_8);
    }

    /** Replaces {@code target} with {@code content} all at once; the file ends up with mode 600 on POSIX. */
    static void writeAtomically(Path target, byte[] content) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        boolean posix = FileSystems.getDefault().supportedFileAttributeViews().contains("posix");
        Path tmp = posix
                ? Files.createTempFile(dir, "." + target.getFileName(), ".tmp",
                        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))
                : Files.createTempFile(dir, "." + target.getFileName(), ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer b = ByteBuffer.wrap(content);
                while (b.hasRemaining()) {
                    ch.write(b);
                }
                ch.force(true);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
