package io.chiral.protocol.http.internal;

import java.io.IOException;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

import io.chiral.api.ContentStore;
import io.chiral.net.ConnectionLimiter;
import io.chiral.net.ListenAddresses;
import io.chiral.net.NetService;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.stream.ChunkedWriteHandler;
import io.netty.handler.timeout.IdleStateHandler;

/** The listening socket and the pipeline of every inbound connection. */
final class HttpServer {
    private static final Logger LOG = Logger.getLogger(HttpServer.class.getName());
    static final int MAX_INITIAL_LINE = 4096;
    static final int MAX_HEADER_SIZE = 8192;
    static final int IDLE_SECONDS = 120;
    private static final long BIND_TIMEOUT_SECONDS = 10;

    private final Channel channel;
    private final InetSocketAddress local;

    private HttpServer(Channel channel) {
        this.channel = channel;
        this.local = (InetSocketAddress) channel.localAddress();
    }

    /**
     * Binds {@code address:port} (0 = any free port) on the node's event loops; every channel, the listening one
     * and each accepted one, joins {@code channels}.
     *
     * @throws BindException when the port is taken or the address is not local
     * @throws IOException   for any other failure to listen
     */
    static HttpServer start(NetService net, ContentStore store, UploadTracker uploads, ChannelGroup channels,
            ConnectionLimiter limiter, InetAddress address, int port) throws IOException {
        ServerBootstrap b = new ServerBootstrap()
                .group(net.group())
                .channel(net.serverChannelType())
                .option(ChannelOption.SO_BACKLOG, 256)
                .option(ChannelOption.SO_REUSEADDR, true)
                .handler(limiter)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        channels.add(ch);
                        HttpDecoderConfig decoder = new HttpDecoderConfig()
                                .setMaxInitialLineLength(MAX_INITIAL_LINE)
                                .setMaxHeaderSize(MAX_HEADER_SIZE);
                        ch.pipeline().addLast("limiter", limiter)
                                .addLast("shaper", net.trafficShaper())
                                .addLast("codec", new HttpServerCodec(decoder, HttpServerHandler.MAX_PIPELINED + 1))
                                // all idle: nothing either way; writer idle: a response that makes no progress,
                                // whatever the client sends meanwhile (one body byte a second keeps reads alive)
                                .addLast("idle", new IdleStateHandler(true, 0, IDLE_SECONDS, IDLE_SECONDS, TimeUnit.SECONDS))
                                .addLast("chunked", new ChunkedWriteHandler())
                                .addLast("files", new HttpServerHandler(store, net, uploads));
                    }
                });
        String where = hostPort(address, port);
        ChannelFuture f = b.bind(new InetSocketAddress(address, port));
        if (!f.awaitUninterruptibly(BIND_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            f.channel().close();
            throw new IOException("cannot listen on " + where + ": bind did not complete within " + BIND_TIMEOUT_SECONDS + " s");
        }
        if (!f.isSuccess()) {
            Throwable cause = f.cause();
            String why = cause.getMessage() != null ? cause.getMessage() : cause.getClass().getSimpleName();
            if (cause instanceof BindException) {
                throw new BindException("cannot listen on " + where + ": " + why);
            }
            throw new IOException("cannot listen on " + where + ": " + why, cause);
        }
        channels.add(f.channel());
        HttpServer server = new HttpServer(f.channel());
        LOG.info("HTTP transport listening on " + hostPort(address, server.port()));
        return server;
    }

    int port() {
        return local.getPort();
    }

    /** Addresses peers can reach this server at (see {@link ListenAddresses}). */
    List<String> listenAddresses() {
        return channel.isActive() ? ListenAddresses.of(local.getAddress(), port()) : List.of();
    }

    static String hostPort(InetAddress address, int port) {
        return ListenAddresses.hostPort(address, port);
    }
}
