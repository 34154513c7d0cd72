package io.chiral.protocol.http.internal;

import java.io.IOException;
import java.net.BindException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

import io.chiral.api.ChunkSource;
import io.chiral.api.ContentProtocol;
import io.chiral.api.ContentStore;
import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.api.PeerInfo;
import io.chiral.net.ConnectionLimiter;
import io.chiral.net.NetService;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;

/**
 * Chiral over plain HTTP/1.1. Serves every complete file of the {@link ContentStore} at
 * {@code /file/{cid}}, {@code /file/{cid}/manifest} and {@code /file/{cid}/chunk/{i}}, and fetches from other
 * nodes the same way. All sockets live on the node's shared event loops ({@link NetService}) behind its traffic
 * shaper; deactivation closes every one of them and waits until they are closed.
 */
@Component(service = ContentProtocol.class, property = ContentProtocol.PROTOCOL_PROPERTY + "=" + HttpProtocol.NAME,
        configurationPid = HttpProtocol.PID, configurationPolicy = ConfigurationPolicy.REQUIRE)
@Designate(ocd = HttpProtocol.Config.class)
public class HttpProtocol implements ContentProtocol {
    static final String NAME = "http";
    static final String PID = "io.chiral.protocol.http";
    private static final Logger LOG = Logger.getLogger(HttpProtocol.class.getName());
    private static final long CLOSE_WAIT_SECONDS = 10;
    private static final int MAX_CONNECTIONS_PER_PEER = 64;

    @ObjectClassDefinition(name = "Chiral HTTP transport", description = "Serves and fetches files over HTTP/1.1")
    public @interface Config {
        @AttributeDefinition(description = "TCP port to listen on; 0 = the port in portFile if free, else any free port")
        int port() default 0;

        @AttributeDefinition(description = "Address to listen on; 0.0.0.0 = every IPv4 interface")
        String bind() default "0.0.0.0";

        @AttributeDefinition(description = "File remembering the port a node listens on across restarts; empty = none")
        String portFile() default "";

        @AttributeDefinition(description = "Connections to one peer while downloading a file from it (1-64)")
        int connectionsPerPeer() default 4;

        @AttributeDefinition(description = "Milliseconds a request may go without response data before it fails")
        long requestTimeoutMillis() default 30000;

        @AttributeDefinition(description = "Inbound connections open at once; 0 = " + DEFAULT_MAX_CONNECTIONS
                + ". Never more than " + FD_PERCENT + " % of the process's open-file limit; when full, the oldest idle"
                + " connection is closed for a new one")
        int maxConnections() default 0;

        @AttributeDefinition(description = "Inbound connections open at once from one address")
        int maxConnectionsPerAddress() default 64;

        @AttributeDefinition(description = "Milliseconds from accepting a connection to its complete request header;"
                + " slower clients are closed")
        long headerTimeoutMillis() default 15000;

        @AttributeDefinition(description = "Milliseconds an idle keep-alive connection may take to send its next"
                + " complete request header")
        long keepAliveMillis() default 60000;
    }

    /** Inbound connections by default, when the open-file limit allows. */
    static final int DEFAULT_MAX_CONNECTIONS = 4096;
    /** Share of the open-file limit the HTTP listener may use. */
    static final int FD_PERCENT = 25;

    private final int connectionsPerPeer;
    private final ChannelGroup channels;
    private final UploadTracker uploads = new UploadTracker();
    private final Set<FileId> seeding = ConcurrentHashMap.newKeySet();
    private final HttpClient client;
    private final HttpServer server;
    private final ConnectionLimiter limiter;

    @Activate
    public HttpProtocol(Config config, @Reference NetService net, @Reference ContentStore store) throws IOException {
        validate(config);
        connectionsPerPeer = config.connectionsPerPeer();
        InetAddress bind = bindAddress(config.bind());
        channels = new DefaultChannelGroup("chiral-http", net.group().next(), true);
        int maxConnections = ConnectionLimiter.cap(config.maxConnections(), DEFAULT_MAX_CONNECTIONS, FD_PERCENT);
        if (config.maxConnections() > maxConnections) {
            LOG.warning("HTTP maxConnections " + config.maxConnections() + " lowered to " + maxConnections + " ("
                    + FD_PERCENT + " % of the open-file limit " + ConnectionLimiter.openFileLimit() + ")");
        }
        limiter = new ConnectionLimiter("HTTP", new ConnectionLimiter.Limits(maxConnections,
                config.maxConnectionsPerAddress(), config.headerTimeoutMillis(), config.keepAliveMillis()));
        LOG.info("HTTP transport accepts at most " + maxConnections + " connections, " + config.maxConnectionsPerAddress()
                + " per address (open-file limit " + ConnectionLimiter.openFileLimit() + ")");
        client = new HttpClient(net, channels, config.requestTimeoutMillis());
        Path portFile = config.portFile().isBlank() ? null : Path.of(config.portFile().strip());
        server = listen(net, store, bind, config.port(), portFile);
        if (portFile != null) {
            try {
                PortFile.write(portFile, server.port());
            } catch (IOException e) {
                LOG.warning("cannot record the HTTP port in " + portFile + " (a restart may change the port): " + e);
            }
        }
    }

    private static void validate(Config config) {
        if (config.port() < 0 || config.port() > 65535) {
            throw new IllegalArgumentException("http port " + config.port() + " out of range (0-65535)");
        }
        if (config.connectionsPerPeer() < 1 || config.connectionsPerPeer() > MAX_CONNECTIONS_PER_PEER) {
            throw new IllegalArgumentException("connectionsPerPeer " + config.connectionsPerPeer() + " out of range (1-"
                    + MAX_CONNECTIONS_PER_PEER + ")");
        }
        if (config.requestTimeoutMillis() < 1) {
            throw new IllegalArgumentException("requestTimeoutMillis must be positive, got " + config.requestTimeoutMillis());
        }
        if (config.maxConnections() < 0 || config.maxConnectionsPerAddress() < 1) {
            throw new IllegalArgumentException("maxConnections must be 0 (default) or positive, maxConnectionsPerAddress"
                    + " positive; got " + config.maxConnections() + " and " + config.maxConnectionsPerAddress());
        }
        if (config.headerTimeoutMillis() < 0 || config.keepAliveMillis() < 0) {
            throw new IllegalArgumentException("headerTimeoutMillis and keepAliveMillis must not be negative (0 = none)");
        }
    }

    private static InetAddress bindAddress(String text) throws UnknownHostException {
        String s = text == null || text.isBlank() ? "0.0.0.0" : text.strip();
        if (s.startsWith("[") && s.endsWith("]")) {
            s = s.substring(1, s.length() - 1);
        }
        try {
            return InetAddress.getByName(s);
        } catch (UnknownHostException e) {
            throw new UnknownHostException("http bind address '" + Route.abbreviate(s) + "' is not an address of this machine");
        }
    }

    /** Binds the configured port; with port 0, first the remembered one, falling back to any free port. */
    private HttpServer listen(NetService net, ContentStore store, InetAddress bind, int port, Path portFile) throws IOException {
        if (port == 0 && portFile != null) {
            OptionalInt remembered = PortFile.read(portFile);
            // a socket closed a moment ago by a stopping bundle is released at its selector's next wake-up
            for (int t = 0; remembered.isPresent() && t < 20; t++) {
                try {
                    return HttpServer.start(net, store, uploads, channels, limiter, bind, remembered.getAsInt());
                } catch (BindException e) {
                    if (t == 19) {
                        LOG.warning(e.getMessage() + " (port remembered in " + portFile + "); listening on a free port instead");
                    } else {
                        sleep(50);
                    }
                }
            }
        }
        return HttpServer.start(net, store, uploads, channels, limiter, bind, port);
    }

    private static void sleep(long millis) throws IOException {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted while binding");
        }
    }

    @Deactivate
    void deactivate() {
        client.close();
        if (!channels.close().awaitUninterruptibly(CLOSE_WAIT_SECONDS, TimeUnit.SECONDS)) {
            LOG.warning("HTTP connections did not close within " + CLOSE_WAIT_SECONDS + " s");
        }
        LOG.info("HTTP transport stopped (port " + server.port() + ")");
    }

    @Override
    public String name() {
        return NAME;
    }

    /** True for {@code http://HOST:PORT/file/<cid>} URLs, and for https ones so {@link #resolve} can say it is unsupported. */
    @Override
    public boolean canHandle(String identifier) {
        return ChiralUrl.looksLikeFileUrl(identifier);
    }

    @Override
    public CompletionStage<Resolution> resolve(String identifier) {
        try {
            ChiralUrl url = ChiralUrl.parse(identifier);
            return CompletableFuture.completedFuture(new Resolution(url.id(), List.of(url.peer())));
        } catch (IllegalArgumentException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    @Override
    public List<String> listenAddresses() {
        return server.listenAddresses();
    }

    @Override
    public CompletionStage<FileMetadata> metadata(FileId id, PeerInfo peer) {
        return client.manifest(id, peer).minimalCompletionStage();
    }

    @Override
    public ChunkSource openSource(FileMetadata metadata, PeerInfo peer) {
        return client.open(metadata, peer, connectionsPerPeer);
    }

    /** Bookkeeping only: the server offers whatever the content store has complete. */
    @Override
    public void seed(FileMetadata metadata) {
        seeding.add(metadata.id());
    }

    @Override
    public void stopSeeding(FileId id) {
        seeding.remove(id);
    }

    @Override
    public List<PeerInfo> peers(FileId id) {
        return uploads.peers(id);
    }
}
