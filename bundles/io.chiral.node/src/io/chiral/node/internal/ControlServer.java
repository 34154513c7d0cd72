package io.chiral.node.internal;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;

import org.osgi.framework.BundleContext;
import org.osgi.framework.BundleException;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;

import io.chiral.api.ContentStore;
import io.chiral.api.ProtocolManager;
import io.chiral.net.ConnectionLimiter;
import io.chiral.net.NetService;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;

/**
 * The loopback control channel the {@code chiral} command line talks to: an HTTP/1.1 JSON API on 127.0.0.1,
 * guarded by a bearer token kept in {@code <dataDir>/config/control.token}. Once bound it publishes
 * {@code <dataDir>/config/control.json} (port and pid) for clients, and removes it when it goes away.
 * The server runs on the shared event loops of {@link NetService}; requests are served on a small executor.
 */
@Component(immediate = true, configurationPid = "io.chiral.node.control",
        configurationPolicy = ConfigurationPolicy.REQUIRE)
public class ControlServer {
    private static final Logger LOG = Logger.getLogger(ControlServer.class.getName());
    private static final String LOOPBACK = "127.0.0.1";
    private static final int WORKERS = 4;
    private static final int QUEUE = 64;

    /** Configuration of {@code io.chiral.node.control}. */
    public @interface Config {
        /** Node data directory (absolute). */
        String dataDir();

        /** Control port; 0 = the port remembered from the last run if free, else any free port. */
        int port() default 0;

        /**
         * Connections open at once (never more than {@value #FD_PERCENT} % of the open-file limit); when full, a
         * connection without an authenticated request in work is closed for the new one.
         */
        int maxConnections() default DEFAULT_MAX_CONNECTIONS;

        /** Connections open at once from one address. */
        int maxConnectionsPerAddress() default DEFAULT_MAX_CONNECTIONS;

        /** Milliseconds from accepting a connection to its complete, authenticated request. */
        long authTimeoutMillis() default 5000;

        /** Milliseconds an idle keep-alive connection may take to send its next complete request. */
        long keepAliveMillis() default 30000;
    }

    static final int DEFAULT_MAX_CONNECTIONS = 128;
    /** Share of the open-file limit the control channel may use. */
    static final int FD_PERCENT = 5;

    @Reference
    private NetService net;
    @Reference
    private ProtocolManager protocols;
    @Reference
    private ContentStore store;
    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    private volatile Provisioner provisioner;
    @Reference
    private io.chiral.api.NodeKey nodeKey;
    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    private volatile io.chiral.api.ContentDirectory directory;
    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            fieldOption = org.osgi.service.component.annotations.FieldOption.UPDATE)
    private final List<io.chiral.api.Dht> dhts = new java.util.concurrent.CopyOnWriteArrayList<>();

    private final Set<Channel> connections = ConcurrentHashMap.newKeySet();
    private ControlFiles files;
    private ExecutorService workers;
    private Channel server;
    private volatile int boundPort;

    @Activate
    void activate(Config config, BundleContext context) throws IOException {
        if (config.dataDir() == null || config.dataDir().isBlank()) {
            throw new IOException("io.chiral.node.control: dataDir is not configured");
        }
        Path dataDir = Path.of(config.dataDir()).toAbsolutePath().normalize();
        files = new ControlFiles(dataDir);
        String token = files.readOrCreateToken();
        workers = newWorkers();
        ControlApi api = new ControlApi(protocols, store, () -> provisioner,
                new ControlApi.NodeInfo(nodeKey.nodeId(), dataDir.toString(), context.getBundle().getVersion().toString(),
                        () -> LOOPBACK + ":" + boundPort),
                () -> stopFramework(context),
                new DhtApi(() -> directory, () -> sortedDhts(), protocols, nodeKey.nodeId()));
        try {
            ConnectionLimiter limiter = limiter(config);
            server = bind(new ControlChannelInitializer(new ControlHandler(token, api, workers), connections, limiter),
                    limiter, config.port());
            boundPort = ((InetSocketAddress) server.localAddress()).getPort();
            files.rememberPort(boundPort);
            files.writeDiscovery(boundPort, ProcessHandle.current().pid());
        } catch (IOException | RuntimeException e) {
            deactivate();
            throw e;
        }
        LOG.info("node " + nodeKey.nodeId() + ": control channel on " + LOOPBACK + ":" + boundPort);
    }

    @Deactivate
    void deactivate() {
        if (files != null) {
            files.deleteDiscovery();
        }
        if (server != null) {
            server.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
            server = null;
        }
        for (Channel c : List.copyOf(connections)) {
            c.close();
        }
        if (workers != null) {
            workers.shutdownNow();
            try {
                if (!workers.awaitTermination(5, TimeUnit.SECONDS)) {
                    LOG.warning("control requests still running after 5 s; leaving them behind");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            workers = null;
        }
    }

    private List<io.chiral.api.Dht> sortedDhts() {
        List<io.chiral.api.Dht> l = new ArrayList<>(dhts);
        l.sort(java.util.Comparator.comparing(io.chiral.api.Dht::network));
        return l;
    }

    private static ConnectionLimiter limiter(Config config) {
        if (config.maxConnections() < 1 || config.maxConnectionsPerAddress() < 1 || config.authTimeoutMillis() < 1
                || config.keepAliveMillis() < 0) {
            throw new IllegalArgumentException("io.chiral.node.control: maxConnections, maxConnectionsPerAddress and"
                    + " authTimeoutMillis must be positive, keepAliveMillis not negative");
        }
        int max = ConnectionLimiter.cap(config.maxConnections(), DEFAULT_MAX_CONNECTIONS, FD_PERCENT);
        return new ConnectionLimiter("control", new ConnectionLimiter.Limits(max,
                Math.min(max, config.maxConnectionsPerAddress()), config.authTimeoutMillis(), config.keepAliveMillis()));
    }

    /** Binds the configured port, else the remembered one if it is free, else any free port. */
    private Channel bind(ControlChannelInitializer init, ConnectionLimiter limiter, int configuredPort) throws IOException {
        ServerBootstrap b = new ServerBootstrap()
                .group(net.group())
                .channel(net.serverChannelType())
                .handler(limiter)
                .childHandler(init);
        InetAddress loopback = InetAddress.getByName(LOOPBACK);
        List<Integer> candidates = new ArrayList<>();
        if (configuredPort > 0) {
            candidates.add(configuredPort);
        } else {
            int remembered = files.rememberedPort();
            if (remembered > 0) {
                candidates.add(remembered);
            }
            candidates.add(0);
        }
        Throwable last = null;
        for (int port : candidates) {
            ChannelFuture f = b.bind(loopback, port).awaitUninterruptibly();
            if (f.isSuccess()) {
                return f.channel();
            }
            last = f.cause();
            LOG.fine("control port " + port + " not available: " + last);
        }
        throw new IOException("cannot bind the control channel to " + LOOPBACK + ":" + candidates.get(0) + ": "
                + (last == null ? "unknown error" : ControlApi.describe(last)), last);
    }

    private static ExecutorService newWorkers() {
        AtomicInteger seq = new AtomicInteger();
        ThreadPoolExecutor pool = new ThreadPoolExecutor(WORKERS, WORKERS, 30, TimeUnit.SECONDS,
                new ArrayBlockingQueue<>(QUEUE), r -> {
                    Thread t = new Thread(r, "chiral-control-" + seq.incrementAndGet());
                    t.setDaemon(true);
                    return t;
                });
        pool.allowCoreThreadTimeOut(true);
        return pool;
    }

    /** Stops the whole framework from a thread of its own (never from a component or event-loop thread). */
    private static void stopFramework(BundleContext context) {
        Thread t = new Thread(() -> {
            try {
                context.getBundle(0).stop();
            } catch (BundleException | IllegalStateException e) {
                LOG.log(Level.WARNING, "cannot stop the framework", e);
            }
        }, "chiral-stop");
        t.start();
    }
}
