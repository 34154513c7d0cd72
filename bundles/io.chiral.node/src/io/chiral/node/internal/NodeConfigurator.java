package io.chiral.node.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.Map;
import java.util.Objects;
import java.util.logging.Logger;

import org.osgi.framework.BundleContext;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * Turns the daemon's command line (system properties set by the {@code chiral} launcher) into ConfigAdmin
 * configurations, one per component PID, so that every component is configured the OSGi way and a protocol
 * bundle installed later finds its configuration waiting. Configurations are created with location "?" so they
 * bind to whichever bundle provides the PID, also after it is reinstalled.
 *
 * <ul>
 * <li>{@code chiral.data} (required to configure anything): the node data directory</li>
 * <li>{@code chiral.http.port}, {@code chiral.control.port}: 0 or absent = the port remembered in
 * {@code <data>/config}, else any free one</li>
 * <li>{@code chiral.bind}: address protocols listen on (default 0.0.0.0)</li>
 * <li>{@code chiral.bt.port}: the BitTorrent TCP port, like the HTTP one; torrents live in {@code <data>/bittorrent}</li>
 * <li>{@code chiral.max.upload.rate}, {@code chiral.max.download.rate}: bytes per second, 0 = unlimited</li>
 * <li>{@code chiral.http.max.connections}, {@code chiral.bt.max.connections}, {@code chiral.control.max.connections}:
 * the most inbound connections of each listener (absent = the component's default, sized to the open-file limit)</li>
 * <li>{@code chiral.dht.port}, {@code chiral.bootstrap}: UDP port and HOST:PORT contacts of the Chiral DHT</li>
 * <li>{@code chiral.mainline.port}, {@code chiral.mainline.bootstrap}: the same for the BitTorrent mainline DHT
 * ({@code none}: no contacts; default: the public routers)</li>
 * </ul>
 * The two DHT instances are factory configurations of {@code io.chiral.dht} named {@code chiral} and
 * {@code mainline}.
 */
@Component(immediate = true)
public class NodeConfigurator {
    private static final Logger LOG = Logger.getLogger(NodeConfigurator.class.getName());

    @Activate
    public NodeConfigurator(@Reference ConfigurationAdmin cm, BundleContext context) throws IOException {
        String data = context.getProperty("chiral.data");
        if (data == null || data.isBlank()) {
            LOG.info("chiral.data is not set: the node is not configured (components stay inactive)");
            return;
        }
        Path dataDir = Path.of(data).toAbsolutePath().normalize();
        for (String sub : new String[] {"store", "downloads", "keystore", "config"}) {
            Files.createDirectories(dataDir.resolve(sub));
        }
        Path config = dataDir.resolve("config");
        ownerOnly(dataDir.resolve("config"), dataDir.resolve("keystore"));
        update(cm, "io.chiral.core.store", Map.of("dataDir", dataDir.toString()));
        update(cm, "io.chiral.net", Map.of(
                "maxUploadRate", parseRate(context.getProperty("chiral.max.upload.rate")),
                "maxDownloadRate", parseRate(context.getProperty("chiral.max.download.rate"))));
        update(cm, "io.chiral.protocol.http", withCap(Map.of(
                "port", port(context.getProperty("chiral.http.port")),
                "bind", Objects.requireNonNullElse(context.getProperty("chiral.bind"), "0.0.0.0"),
                "portFile", config.resolve("http.port").toString()),
                "maxConnections", context.getProperty("chiral.http.max.connections")));
        String bind = Objects.requireNonNullElse(context.getProperty("chiral.bind"), "0.0.0.0");
        update(cm, "io.chiral.protocol.bittorrent", withCap(Map.of(
                "port", port(context.getProperty("chiral.bt.port")),
                "bind", bind,
                "portFile", config.resolve("bittorrent.port").toString(),
                "stateDir", dataDir.resolve("bittorrent").toString(),
                "downloadDir", dataDir.resolve("downloads").toString(),
                "sourceTimeoutSeconds", seconds(context.getProperty("chiral.source.timeout"), 180)),
                "maxInboundConnections", context.getProperty("chiral.bt.max.connections")));
        updateFactory(cm, "io.chiral.dht", "chiral", Map.of(
                "chiral.dht.network", "chiral",
                "bind", bind,
                "port", port(context.getProperty("chiral.dht.port")),
                "bootstrap", contacts(context.getProperty("chiral.bootstrap"), ""),
                "portFile", config.resolve("dht-chiral.port").toString(),
                "nodesFile", config.resolve("dht-chiral.nodes").toString()));
        updateFactory(cm, "io.chiral.dht", "mainline", Map.of(
                "chiral.dht.network", "mainline",
                "bind", bind,
                "port", port(context.getProperty("chiral.mainline.port")),
                "bootstrap", contacts(context.getProperty("chiral.mainline.bootstrap"), PUBLIC_ROUTERS),
                "portFile", config.resolve("dht-mainline.port").toString(),
                "nodesFile", config.resolve("dht-mainline.nodes").toString()));
        update(cm, "io.chiral.node.control", withCap(Map.of(
                "dataDir", dataDir.toString(),
                "port", port(context.getProperty("chiral.control.port"))),
                "maxConnections", context.getProperty("chiral.control.max.connections")));
        LOG.info("node data directory " + dataDir);
    }

    /** Where a node with no known contacts joins BitTorrent's DHT. */
    static final String PUBLIC_ROUTERS = "router.bittorrent.com:6881,dht.transmissionbt.com:6881,router.utorrent.com:6881";

    /**
     * Secrets live in {@code config/} (control token, node key) and {@code keystore/}: on every start these folders
     * get mode 700 and the files in them 600, whatever the umask was or an older version left.
     */
    static void ownerOnly(Path... dirs) throws IOException {
        if (!java.nio.file.FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
            return;
        }
        var dirMode = java.nio.file.attribute.PosixFilePermissions.fromString("rwx------");
        var fileMode = java.nio.file.attribute.PosixFilePermissions.fromString("rw-------");
        for (Path dir : dirs) {
            Files.setPosixFilePermissions(dir, dirMode);
            try (var files = Files.newDirectoryStream(dir)) {
                for (Path f : files) {
                    if (Files.isRegularFile(f, java.nio.file.LinkOption.NOFOLLOW_LINKS)
                            && !Files.getPosixFilePermissions(f, java.nio.file.LinkOption.NOFOLLOW_LINKS).equals(fileMode)) {
                        Files.setPosixFilePermissions(f, fileMode);
                    }
                }
            }
        }
    }

    /** {@code values} and, when {@code value} is given, {@code key} = that positive number of connections. */
    static Map<String, Object> withCap(Map<String, Object> values, String key, String value) {
        if (value == null || value.isBlank()) {
            return values;
        }
        int n = Integer.parseInt(value.strip());
        if (n < 1) {
            throw new IllegalArgumentException(key + " must be positive: " + n);
        }
        Map<String, Object> out = new java.util.HashMap<>(values);
        out.put(key, n);
        return out;
    }

    private static String contacts(String value, String otherwise) {
        if (value == null || value.isBlank()) {
            return otherwise;
        }
        return "none".equals(value.strip()) ? "" : value.strip();
    }

    private static void updateFactory(ConfigurationAdmin cm, String factoryPid, String name, Map<String, Object> values)
            throws IOException {
        apply(cm.getFactoryConfiguration(factoryPid, name, "?"), values);
    }

    private static void update(ConfigurationAdmin cm, String pid, Map<String, Object> values) throws IOException {
        apply(cm.getConfiguration(pid, "?"), values);
    }

    private static void apply(Configuration c, Map<String, Object> values) throws IOException {
        Dictionary<String, Object> current = c.getProperties();
        Dictionary<String, Object> next = new Hashtable<>();
        values.forEach(next::put);
        if (current != null && sameValues(current, values)) {
            return; // unchanged: do not restart components
        }
        c.update(next);
    }

    private static boolean sameValues(Dictionary<String, Object> current, Map<String, Object> values) {
        int set = 0;
        for (var keys = current.keys(); keys.hasMoreElements();) {
            if (!keys.nextElement().startsWith("service.")) {
                set++;
            }
        }
        if (set != values.size()) {
            return false; // a value was added or dropped (e.g. a connection cap no longer given)
        }
        for (Map.Entry<String, Object> e : values.entrySet()) {
            if (!e.getValue().equals(current.get(e.getKey()))) {
                return false;
            }
        }
        return true;
    }

    static int port(String s) {
        if (s == null || s.isBlank()) {
            return 0;
        }
        int p = Integer.parseInt(s.strip());
        if (p < 0 || p > 65535) {
            throw new IllegalArgumentException("port out of range: " + p);
        }
        return p;
    }

    /** Parses a duration such as {@code 30s}, {@code 3m}, {@code 1h}, {@code 90} (seconds); {@code otherwise} when unset. */
    static int seconds(String s, int otherwise) {
        if (s == null || s.isBlank()) {
            return otherwise;
        }
        String t = s.strip().toLowerCase(java.util.Locale.ROOT);
        int mul = t.endsWith("h") ? 3600 : t.endsWith("m") ? 60 : 1;
        if (t.endsWith("h") || t.endsWith("m") || t.endsWith("s")) {
            t = t.substring(0, t.length() - 1);
        }
        return Math.toIntExact(Math.min(Integer.MAX_VALUE, Long.parseLong(t) * mul));
    }

    /** Parses a rate such as {@code 8M}, {@code 512k}, {@code 1000000}: bytes per second. */
    static long parseRate(String s) {
        if (s == null || s.isBlank()) {
            return 0L;
        }
        String t = s.strip().toUpperCase(java.util.Locale.ROOT);
        long mul = 1;
        char last = t.charAt(t.length() - 1);
        if (last == 'K' || last == 'M' || last == 'G') {
            mul = last == 'K' ? 1024L : last == 'M' ? 1024L * 1024 : 1024L * 1024 * 1024;
            t = t.substring(0, t.length() - 1);
        }
        return Long.parseLong(t) * mul;
    }
}
