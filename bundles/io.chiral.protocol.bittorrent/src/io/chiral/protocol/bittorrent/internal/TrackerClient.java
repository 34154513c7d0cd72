package io.chiral.protocol.bittorrent.internal;

import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.security.SecureRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.socket.DatagramPacket;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioDatagramChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.timeout.ReadTimeoutHandler;

/**
 * Announces to HTTP (BEP 3, compact answers per BEP 23) and UDP (BEP 15) trackers over Netty. Answers are parsed by
 * {@link Trackers}, which bounds them; an HTTP answer above {@link Trackers#MAX_HTTP_RESPONSE} is refused by the
 * aggregator before it is buffered. UDP requests are retried three times, 3 s apart (BEP 15's 15 s back-off is
 * meant for the open internet, not a tracker that lost one datagram on a LAN).
 */
final class TrackerClient {
    static final int TIMEOUT_SECONDS = 15;
    private static final int UDP_TRIES = 3;
    private static final int UDP_RETRY_SECONDS = 3;

    private final EventLoopGroup group;
    private final SecureRandom random = new SecureRandom();

    TrackerClient(EventLoopGroup group) {
        this.group = group;
    }

    /** Announces {@code a} to {@code url}; completes with the tracker's answer or exceptionally with why not. */
    CompletableFuture<Trackers.Result> announce(String url, Trackers.Announce a) {
        URI uri;
        try {
            uri = new URI(url);
        } catch (URISyntaxException e) {
            return CompletableFuture.failedFuture(new TorrentException("not a tracker URL: " + url));
        }
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(java.util.Locale.ROOT);
        if (uri.getHost() == null) {
            return CompletableFuture.failedFuture(new TorrentException("tracker URL without a host: " + url));
        }
        return switch (scheme) {
            case "http" -> http(uri, url, a);
            case "udp" -> udp(uri, a);
            default -> CompletableFuture.failedFuture(new TorrentException("unsupported tracker scheme '" + scheme
                    + "' (http and udp are supported): " + url));
        };
    }

    private CompletableFuture<Trackers.Result> http(URI uri, String url, Trackers.Announce a) {
        CompletableFuture<Trackers.Result> result = new CompletableFuture<>();
        int port = uri.getPort() > 0 ? uri.getPort() : 80;
        String full = Trackers.httpAnnounceUrl(url, a);
        URI target = URI.create(full);
        String path = (target.getRawPath() == null || target.getRawPath().isEmpty() ? "/" : target.getRawPath())
                + (target.getRawQuery() == null ? "" : "?" + target.getRawQuery());
        Bootstrap b = new Bootstrap().group(group).channel(NioSocketChannel.class)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, TIMEOUT_SECONDS * 1000)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(new ReadTimeoutHandler(TIMEOUT_SECONDS), new HttpClientCodec(),
                                new HttpObjectAggregator(Trackers.MAX_HTTP_RESPONSE),
                                new SimpleChannelInboundHandler<FullHttpResponse>() {
                                    @Override
                                    protected void channelRead0(ChannelHandlerContext ctx, FullHttpResponse r) {
                                        try {
                                            if (r.status().code() != 200) {
                                                throw new TorrentException("tracker answered HTTP " + r.status());
                                            }
                                            result.complete(Trackers.parseHttp(ByteBufUtil.getBytes(r.content())));
                                        } catch (TorrentException e) {
                                            result.completeExceptionally(e);
                                        }
                                        ctx.close();
                                    }

                                    @Override
                                    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                        result.completeExceptionally(cause);
                                        ctx.close();
                                    }

                                    @Override
                                    public void channelInactive(ChannelHandlerContext ctx) {
                                        result.completeExceptionally(new TorrentException("tracker closed the connection"));
                                    }
                                });
                    }
                });
        b.connect(uri.getHost(), port).addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess()) {
                result.completeExceptionally(f.cause());
                return;
            }
            DefaultFullHttpRequest req = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, path);
            req.headers().set(HttpHeaderNames.HOST, uri.getHost() + (uri.getPort() > 0 ? ":" + uri.getPort() : ""));
            req.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            req.headers().set(HttpHeaderNames.USER_AGENT, "Chiral");
            f.channel().writeAndFlush(req);
        });
        return result;
    }

    private CompletableFuture<Trackers.Result> udp(URI uri, Trackers.Announce a) {
        CompletableFuture<Trackers.Result> result = new CompletableFuture<>();
        if (uri.getPort() <= 0) {
            result.completeExceptionally(new TorrentException("UDP tracker URL without a port: " + uri));
            return result;
        }
        InetSocketAddress tracker = new InetSocketAddress(uri.getHost(), uri.getPort());
        if (tracker.isUnresolved()) {
            result.completeExceptionally(new TorrentException("cannot resolve tracker host " + uri.getHost()));
            return result;
        }
        UdpExchange x = new UdpExchange(tracker, a, result);
        Bootstrap b = new Bootstrap().group(group).channel(NioDatagramChannel.class).handler(x);
        b.bind(0).addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess()) {
                result.completeExceptionally(f.cause());
                return;
            }
            x.start(f.channel());
        });
        return result;
    }

    /** One BEP 15 connect + announce exchange on its own socket, all on the socket's event loop. */
    private final class UdpExchange extends SimpleChannelInboundHandler<DatagramPacket> {
        private final InetSocketAddress tracker;
        private final Trackers.Announce announce;
        private final CompletableFuture<Trackers.Result> result;
        private Channel channel;
        private int transaction;
        private long connectionId;
        private boolean connected;
        private int tries;
        private ScheduledFuture<?> retry;

        UdpExchange(InetSocketAddress tracker, Trackers.Announce announce, CompletableFuture<Trackers.Result> result) {
            this.tracker = tracker;
            this.announce = announce;
            this.result = result;
        }

        void start(Channel ch) {
            channel = ch;
            result.whenComplete((r, e) -> ch.close());
            ch.eventLoop().execute(this::send);
        }

        private void send() {
            if (result.isDone()) {
                return;
            }
            if (++tries > UDP_TRIES) {
                result.completeExceptionally(new TorrentException("UDP tracker " + tracker + " did not answer"));
                return;
            }
            transaction = random.nextInt();
            byte[] msg = connected ? Trackers.udpAnnounce(connectionId, transaction, announce)
                    : Trackers.udpConnect(transaction);
            channel.writeAndFlush(new DatagramPacket(Unpooled.wrappedBuffer(msg), tracker));
            retry = channel.eventLoop().schedule(this::send, UDP_RETRY_SECONDS, TimeUnit.SECONDS);
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, DatagramPacket p) {
            if (!p.sender().equals(tracker) || result.isDone()) {
                return;
            }
            byte[] d = ByteBufUtil.getBytes(p.content(), p.content().readerIndex(),
                    Math.min(p.content().readableBytes(), 20 + 6 * Trackers.MAX_PEERS));
            try {
                if (!connected) {
                    connectionId = Trackers.parseUdpConnect(d, d.length, transaction);
                    connected = true;
                    tries = 0;
                    retry.cancel(false);
                    send();
                } else {
                    retry.cancel(false);
                    result.complete(Trackers.parseUdpAnnounce(d, d.length, transaction));
                }
            } catch (TorrentException e) {
                // a stale or foreign datagram: keep waiting for the right one until the retries run out
            }
        }
    }
}
