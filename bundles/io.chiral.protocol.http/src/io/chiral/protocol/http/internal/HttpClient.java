package io.chiral.protocol.http.internal;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.api.PeerInfo;
import io.chiral.net.NetService;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.group.ChannelGroup;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpDecoderConfig;

/**
 * The client side of the protocol: opens connections to peers on the node's event loops (every one joins the
 * protocol's channel group), fetches manifests and hands out {@link HttpChunkSource}s. Once closed it refuses
 * new work; {@link #close()} fails whatever is pending.
 */
final class HttpClient {
    /** Largest response piece the decoder hands over at once. */
    private static final int MAX_CONTENT_PIECE = 64 * 1024;
    static final String STOPPED = "the http protocol is stopped";

    private final NetService net;
    private final ChannelGroup channels;
    private final long timeoutMillis;
    private final Bootstrap bootstrap;
    private final Set<HttpChunkSource> sources = ConcurrentHashMap.newKeySet();
    private final Set<ClientConnection> manifestFetches = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    HttpClient(NetService net, ChannelGroup channels, long timeoutMillis) {
        this.net = net;
        this.channels = channels;
        this.timeoutMillis = timeoutMillis;
        this.bootstrap = new Bootstrap()
                .group(net.group())
                .channel(net.socketChannelType())
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) Math.min(Integer.MAX_VALUE, timeoutMillis))
                .option(ChannelOption.TCP_NODELAY, true);
    }

    /** Asks {@code peer} for the manifest of {@code id} on a connection of its own. */
    CompletableFuture<FileMetadata> manifest(FileId id, PeerInfo peer) {
        Exchange<FileMetadata> exchange = new Exchange<>(Route.PREFIX + id.hex() + "/manifest", true, ManifestReader::new);
        ClientConnection connection = new ClientConnection(peer, timeoutMillis, new ClientConnection.Listener() {
            @Override
            public void connected(ClientConnection c) {
                c.send(exchange);
            }

            @Override
            public void idle(ClientConnection c) {
                c.close("done");
            }

            @Override
            public void retry(Exchange<?> e) {
                e.fail(Failures.of(peer, "connection closed by peer before it answered"));
            }

            @Override
            public void closed(ClientConnection c, IOException cause) {
                manifestFetches.remove(c);
                exchange.fail(cause != null ? cause : Failures.of(peer, "connection closed by peer before it answered"));
            }
        });
        manifestFetches.add(connection);
        if (closed) {
            connection.close(STOPPED);
        }
        connect(connection);
        return exchange.result();
    }

    /** A source of the chunks of {@code meta} at {@code peer}; connects when the first chunk is asked for. */
    HttpChunkSource open(FileMetadata meta, PeerInfo peer, int connections) {
        if (closed) {
            throw new IllegalStateException(STOPPED);
        }
        HttpChunkSource source = new HttpChunkSource(this, meta, peer, connections, timeoutMillis);
        sources.add(source);
        if (closed) {
            source.close();
        }
        return source;
    }

    /** Starts connecting {@code c} to its peer; the outcome reaches its listener. */
    void connect(ClientConnection c) {
        if (closed) {
            c.attachFailed(Failures.of(c.peer(), STOPPED));
            return;
        }
        PeerInfo peer = c.peer();
        InetSocketAddress address;
        try {
            address = InetSocketAddress.createUnresolved(peer.host(), peer.port());
        } catch (RuntimeException e) {
            c.attachFailed(Failures.of(peer, "not a host:port address"));
            return;
        }
        HttpDecoderConfig decoder = new HttpDecoderConfig()
                .setMaxInitialLineLength(HttpServer.MAX_INITIAL_LINE)
                .setMaxHeaderSize(HttpServer.MAX_HEADER_SIZE)
                .setMaxChunkSize(MAX_CONTENT_PIECE);
        Bootstrap b = bootstrap.clone().handler(new ChannelInitializer<Channel>() {
            @Override
            protected void initChannel(Channel ch) {
                channels.add(ch);
                ch.pipeline().addLast("shaper", net.trafficShaper())
                        .addLast("codec", new HttpClientCodec(decoder, false, false))
                        .addLast("peer", c);
            }
        });
        c.attach(b.connect(address));
    }

    void forget(HttpChunkSource source) {
        sources.remove(source);
    }

    /** Refuses new work and closes every source (their pending fetches fail). */
    void close() {
        closed = true;
        for (HttpChunkSource s : List.copyOf(sources)) {
            s.close();
        }
        for (ClientConnection c : List.copyOf(manifestFetches)) {
            c.close(STOPPED);
        }
    }
}
