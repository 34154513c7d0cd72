package io.chiral.node.internal;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.logging.Level;
import java.util.logging.Logger;

import io.chiral.net.ConnectionLimiter;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler.Sharable;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.timeout.IdleStateEvent;

/**
 * Checks the bearer token of each aggregated request (constant-time), then serves it with {@link ControlApi} on
 * the worker executor and writes the JSON answer. A connection reads its next request only after the previous
 * answer went out, so answers never overtake each other and each connection has at most one request in work.
 */
@Sharable
final class ControlHandler extends SimpleChannelInboundHandler<FullHttpRequest> {
    private static final Logger LOG = Logger.getLogger(ControlHandler.class.getName());

    private final byte[] expectedAuthorization;
    private final ControlApi api;
    private final Executor workers;

    ControlHandler(String token, ControlApi api, Executor workers) {
        this.expectedAuthorization = ("Bearer " + token).getBytes(StandardCharsets.US_ASCII);
        this.api = api;
        this.workers = workers;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
        boolean keepAlive = HttpUtil.isKeepAlive(req);
        if (req.decoderResult().isFailure()) {
            write(ctx, ControlResponse.error(400, "malformed HTTP request"), false);
            return;
        }
        if (!authorized(req.headers().get(HttpHeaderNames.AUTHORIZATION))) {
            // closed after the answer: an unauthenticated connection gets one try within its deadline
            write(ctx, ControlResponse.error(401, "missing or wrong control token (see <data>/config/control.token)"), false);
            return;
        }
        ConnectionLimiter.busy(ctx.channel()); // the owner's request: never closed for room
        String path;
        try {
            path = new QueryStringDecoder(req.uri()).path();
        } catch (IllegalArgumentException e) {
            write(ctx, ControlResponse.error(400, "malformed request path"), keepAlive);
            return;
        }
        ControlRequest request = new ControlRequest(req.method().name(), path, req.content().toString(StandardCharsets.UTF_8));
        ctx.channel().config().setAutoRead(false);
        try {
            workers.execute(() -> write(ctx, api.handle(request), keepAlive));
        } catch (RejectedExecutionException e) {
            write(ctx, ControlResponse.error(503, "the node is busy or stopping; try again"), false);
        }
    }

    private boolean authorized(String header) {
        byte[] given = header == null ? new byte[0] : header.strip().getBytes(StandardCharsets.UTF_8);
        return MessageDigest.isEqual(given, expectedAuthorization);
    }

    /** Sends {@code resp}; thread-safe. Closes the connection afterwards unless {@code keepAlive}. */
    static void write(ChannelHandlerContext ctx, ControlResponse resp, boolean keepAlive) {
        ctx.writeAndFlush(toHttp(resp, keepAlive)).addListener((ChannelFutureListener) f -> {
            if (!keepAlive || !f.isSuccess()) {
                f.channel().close();
            } else {
                ConnectionLimiter.idle(f.channel());
                f.channel().config().setAutoRead(true);
            }
            if (resp.afterFlush() != null) {
                resp.afterFlush().run();
            }
        });
    }

    static FullHttpResponse toHttp(ControlResponse resp, boolean keepAlive) {
        ByteBuf body = Unpooled.copiedBuffer(ControlJson.GSON.toJson(resp.body()), StandardCharsets.UTF_8);
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(resp.status()), body);
        r.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/json; charset=utf-8");
        r.headers().set(HttpHeaderNames.CONTENT_LENGTH, body.readableBytes());
        r.headers().set(HttpHeaderNames.CACHE_CONTROL, HttpHeaderValues.NO_STORE);
        HttpUtil.setKeepAlive(r, keepAlive);
        return r;
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
        if (evt instanceof IdleStateEvent && ctx.channel().config().isAutoRead()) {
            ctx.close(); // idle between requests; a request in work keeps its connection
        } else {
            super.userEventTriggered(ctx, evt);
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        LOG.log(Level.FINE, "control connection failed", cause);
        ctx.close();
    }
}
