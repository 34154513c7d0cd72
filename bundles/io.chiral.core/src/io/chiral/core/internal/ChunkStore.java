package io.chiral.core.internal;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

import io.chiral.api.ContentStore;
import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;

/**
 * The on-disk store under {@code <data>/store}. Complete files stay where the user has them; the store keeps for
 * each one a record ({@code <cid>.json}: metadata, path, size, modification time). A download in progress has a
 * state record ({@code <cid>.download.json}) and a bitmap of verified chunks ({@code <cid>.bitmap}), both
 * replaced atomically. Also owns the worker threads for hashing and verification.
 */
@Component(service = {ContentStore.class, ChunkStore.class}, configurationPid = ChunkStore.PID,
        configurationPolicy = ConfigurationPolicy.REQUIRE)
public class ChunkStore implements ContentStore {
    static final String PID = "io.chiral.core.store";
    private static final Logger LOG = Logger.getLogger(ChunkStore.class.getName());
    private static final byte[] BITMAP_MAGIC = "CHBM1".getBytes(StandardCharsets.US_ASCII);

    @ObjectClassDefinition(name = "Chiral content store")
    public @interface Config {
        @AttributeDefinition(description = "Node data directory; the store lives in <dataDir>/store")
        String dataDir();

        @AttributeDefinition(description = "Hashing and verification threads; 0 = one per core")
        int workers() default 0;
    }

    /** What the store knows of a complete file. */
    record Entry(FileMetadata metadata, String path, long size, long modifiedMillis) {
    }

    /** A download in progress, persisted so it resumes after a crash. */
    record DownloadRecord(FileMetadata metadata, FileId id, String partPath, String outputDir, List<String> sources) {
    }

    private final Path dataDir;
    private final Path dir;
    private final Map<FileId, Entry> entries = new ConcurrentHashMap<>();
    private final ExecutorService workers;
    private final ScheduledExecutorService checkpoints;

    @Activate
    public ChunkStore(Config config) throws IOException {
        this(Path.of(config.dataDir()), config.workers());
    }

    public ChunkStore(Path dataDir, int workerThreads) throws IOException {
        this.dataDir = dataDir.toAbsolutePath();
        this.dir = this.dataDir.resolve("store");
        Files.createDirectories(dir);
        int n = workerThreads > 0 ? workerThreads : Runtime.getRuntime().availableProcessors();
        AtomicInteger seq = new AtomicInteger();
        this.workers = new ThreadPoolExecutor(n, n, 30, TimeUnit.SECONDS, new LinkedBlockingQueue<>(), r -> {
            Thread t = new Thread(r, "chiral-worker-" + seq.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        ((ThreadPoolExecutor) workers).allowCoreThreadTimeOut(true);
        this.checkpoints = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "chiral-checkpoint");
            t.setDaemon(true);
            return t;
        });
        load();
    }

    @Deactivate
    public void close() {
        workers.shutdownNow();
        checkpoints.shutdown();
        try {
            workers.awaitTermination(5, TimeUnit.SECONDS);
            checkpoints.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void load() throws IOException {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.json")) {
            for (Path p : ds) {
                String n = p.getFileName().toString();
                if (n.endsWith(".download.json") || !FileId.isCid(n.substring(0, n.length() - 5))) {
                    continue;
                }
                try {
                    Entry e = Json.GSON.fromJson(Files.readString(p), Entry.class);
                    if (e != null && e.metadata() != null) {
                        entries.put(e.metadata().id(), e);
                    }
                } catch (RuntimeException | IOException ex) {
                    LOG.log(Level.WARNING, "ignoring unreadable store record " + p + ": " + ex);
                }
            }
        }
    }

    public Path dataDir() {
        return dataDir;
    }

    public ExecutorService workers() {
        return workers;
    }

    /** The thread that forces partial files to disk and writes their bitmaps, off the verification path. */
    public ScheduledExecutorService checkpoints() {
        return checkpoints;
    }

    @Override
    public FileMetadata add(Path file) throws IOException {
        Path abs = shareable(file);
        BasicFileAttributes before = Files.readAttributes(abs, BasicFileAttributes.class);
        FileMetadata meta = Chunker.describe(abs, abs.getFileName().toString(), FileMetadata.DEFAULT_CHUNK_SIZE, workers, null);
        BasicFileAttributes after = Files.readAttributes(abs, BasicFileAttributes.class);
        if (before.size() != after.size() || !before.lastModifiedTime().equals(after.lastModifiedTime())) {
            throw new IOException(abs + " changed while it was being hashed; try again");
        }
        record(meta, abs, after);
        post(io.chiral.api.ChiralEvents.FILE_ADDED, meta.id());
        return meta;
    }

    @org.osgi.service.component.annotations.Reference(
            cardinality = org.osgi.service.component.annotations.ReferenceCardinality.OPTIONAL,
            policy = org.osgi.service.component.annotations.ReferencePolicy.DYNAMIC)
    private volatile org.osgi.service.event.EventAdmin events;

    private void post(String topic, FileId id) {
        org.osgi.service.event.EventAdmin ea = events;
        if (ea != null) {
            ea.postEvent(new org.osgi.service.event.Event(topic, Map.of(io.chiral.api.ChiralEvents.PROP_CID, id.hex())));
        }
    }

    /** File systems whose files are made up when read (their size says 0 or 4096 whatever they hold). */
    private static final java.util.Set<String> PSEUDO_FILE_SYSTEMS = java.util.Set.of("proc", "sysfs", "devtmpfs",
            "devpts", "debugfs", "tracefs", "securityfs", "cgroup", "cgroup2", "configfs", "pstore", "bpf",
            "efivarfs", "fusectl", "hugetlbfs", "mqueue", "binfmt_misc", "autofs", "rpc_pipefs", "nsfs");

    /**
     * The real path of a file that may be shared: links resolved; a regular, readable file on a real file system.
     *
     * @throws NoSuchFileException the file (or a folder on its path) does not exist
     * @throws java.nio.file.AccessDeniedException the file or a folder on its path may not be read or entered
     * @throws java.nio.file.FileSystemException a directory, device, FIFO, socket, or a file of a pseudo file system
     */
    static Path shareable(Path file) throws IOException {
        Path abs = file.toAbsolutePath().normalize();
        Path real;
        try {
            real = abs.toRealPath();
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(abs.toString(), null, "no such file");
        } catch (java.nio.file.AccessDeniedException e) {
            throw new java.nio.file.AccessDeniedException(abs.toString(), null, "permission denied");
        }
        BasicFileAttributes a = Files.readAttributes(real, BasicFileAttributes.class);
        String shown = real.equals(abs) ? abs.toString() : abs + " (a link to " + real + ")";
        if (a.isDirectory()) {
            throw new java.nio.file.FileSystemException(shown, null, "is a directory: only files can be added");
        }
        if (!a.isRegularFile()) {
            throw new java.nio.file.FileSystemException(shown, null,
                    "not a regular file (a device, FIFO or socket): only files can be added");
        }
        String type;
        try {
            type = Files.getFileStore(real).type();
        } catch (IOException e) {
            type = "?"; // the JDK cannot name the mount of some bind mounts and subvolumes: not a pseudo file system
        }
        if (PSEUDO_FILE_SYSTEMS.contains(type)) {
            throw new java.nio.file.FileSystemException(shown, null, "on the " + type
                    + " pseudo file system, whose files are generated when read: it cannot be shared");
        }
        if (!Files.isReadable(real)) {
            throw new java.nio.file.AccessDeniedException(shown, null, "permission denied");
        }
        return real;
    }

    /** Records a complete, verified file (a finished download). */
    public void markComplete(FileMetadata meta, Path file) throws IOException {
        Path abs = file.toAbsolutePath().normalize();
        record(meta, abs, Files.readAttributes(abs, BasicFileAttributes.class));
    }

    private void record(FileMetadata meta, Path abs, BasicFileAttributes attrs) throws IOException {
        Entry e = new Entry(meta, abs.toString(), attrs.size(), attrs.lastModifiedTime().toMillis());
        AtomicFiles.write(dir.resolve(meta.id().hex() + ".json"), Json.GSON.toJson(e).getBytes(StandardCharsets.UTF_8));
        entries.put(meta.id(), e);
    }

    @Override
    public Optional<FileMetadata> metadata(FileId id) {
        Entry e = entries.get(id);
        if (e != null) {
            return Optional.of(e.metadata());
        }
        return download(id).map(DownloadRecord::metadata);
    }

    @Override
    public List<FileMetadata> list() {
        List<FileMetadata> out = new ArrayList<>();
        for (Entry e : entries.values()) {
            out.add(e.metadata());
        }
        out.sort(Comparator.comparing(FileMetadata::name).thenComparing(FileMetadata::id));
        return out;
    }

    @Override
    public Optional<Path> contentPath(FileId id) {
        Entry e = entries.get(id);
        if (e == null) {
            return Optional.empty();
        }
        Path p = Path.of(e.path());
        try {
            BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
            if (a.size() == e.size() && a.lastModifiedTime().toMillis() == e.modifiedMillis()) {
                return Optional.of(p);
            }
            LOG.warning("no longer serving " + id.shortHex() + ": " + p + " changed on disk (add it again to re-hash it)");
        } catch (IOException ex) {
            LOG.warning("no longer serving " + id.shortHex() + ": " + p + " is gone (" + ex.getMessage() + ")");
        }
        try {
            remove(id);
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        return Optional.empty();
    }

    @Override
    public boolean remove(FileId id) throws IOException {
        Entry e = entries.remove(id);
        Files.deleteIfExists(dir.resolve(id.hex() + ".json"));
        if (e != null) {
            post(io.chiral.api.ChiralEvents.FILE_REMOVED, id);
        }
        return e != null;
    }

    // ---- downloads in progress ----

    public void saveDownload(DownloadRecord rec) throws IOException {
        AtomicFiles.write(dir.resolve(rec.id().hex() + ".download.json"), Json.GSON.toJson(rec).getBytes(StandardCharsets.UTF_8));
    }

    public Optional<DownloadRecord> download(FileId id) {
        Path p = dir.resolve(id.hex() + ".download.json");
        if (!Files.exists(p)) {
            return Optional.empty();
        }
        try {
            return Optional.ofNullable(Json.GSON.fromJson(Files.readString(p), DownloadRecord.class));
        } catch (IOException | RuntimeException e) {
            LOG.warning("ignoring unreadable download record " + p + ": " + e);
            return Optional.empty();
        }
    }

    public List<DownloadRecord> downloads() {
        List<DownloadRecord> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.download.json")) {
            for (Path p : ds) {
                String n = p.getFileName().toString();
                String hex = n.substring(0, n.length() - ".download.json".length());
                if (FileId.isCid(hex)) {
                    download(FileId.parse(hex)).ifPresent(out::add);
                }
            }
        } catch (IOException e) {
            LOG.warning("cannot list downloads in " + dir + ": " + e);
        }
        return out;
    }

    public void deleteDownload(FileId id) throws IOException {
        Files.deleteIfExists(dir.resolve(id.hex() + ".download.json"));
        Files.deleteIfExists(dir.resolve(id.hex() + ".bitmap"));
    }

    /** Persists the verified-chunk bitmap atomically. Callers force the data file first. */
    public void writeBitmap(FileId id, BitSet verified, int chunks) throws IOException {
        byte[] bits = verified.toByteArray();
        ByteBuffer b = ByteBuffer.allocate(BITMAP_MAGIC.length + 4 + (chunks + 7) / 8);
        b.put(BITMAP_MAGIC).putInt(chunks).put(bits, 0, Math.min(bits.length, b.remaining()));
        AtomicFiles.write(dir.resolve(id.hex() + ".bitmap"), b.array());
    }

    /** The persisted bitmap, or an empty one when there is none or it does not match {@code chunks}. */
    public BitSet readBitmap(FileId id, int chunks) {
        Path p = dir.resolve(id.hex() + ".bitmap");
        try {
            if (!Files.exists(p) || Files.size(p) != BITMAP_MAGIC.length + 4 + (chunks + 7) / 8) {
                return new BitSet(chunks);
            }
            ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(p));
            byte[] magic = new byte[BITMAP_MAGIC.length];
            b.get(magic);
            if (!java.util.Arrays.equals(magic, BITMAP_MAGIC) || b.getInt() != chunks) {
                return new BitSet(chunks);
            }
            BitSet s = BitSet.valueOf(b);
            s.clear(chunks, Math.max(chunks, s.length()));
            return s;
        } catch (IOException e) {
            LOG.warning("cannot read bitmap " + p + ": " + e);
            return new BitSet(chunks);
        }
    }
}
