package io.chiral.node.internal;

import java.util.Set;
import java.util.concurrent.TimeUnit;

import io.chiral.net.ConnectionLimiter;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.util.ReferenceCountUtil;

/**
 * Pipeline of one control connection: HTTP/1.1 codec, an aggregator limited to {@value #MAX_BODY} bytes that
 * answers larger bodies with a JSON 413, an idle timeout, and the {@link ControlHandler}, behind a
 * {@link ConnectionLimiter} that bounds the connections and gives each a deadline for a complete authenticated
 * request. Tracks open connections so that they can be closed on deactivation.
 */
final class ControlChannelInitializer extends ChannelInitializer<Channel> {
    static final int MAX_BODY = 1024 * 1024;
    private static final int IDLE_SECONDS = 120;

    private final ControlHandler handler;
    private final Set<Channel> open;
    private final ConnectionLimiter limiter;

    ControlChannelInitializer(ControlHandler handler, Set<Channel> open, ConnectionLimiter limiter) {
        this.handler = handler;
        this.open = open;
        this.limiter = limiter;
    }

    @Override
    protected void initChannel(Channel ch) {
        open.add(ch);
        ch.closeFuture().addListener(f -> open.remove(ch));
        ch.pipeline().addLast(limiter, new HttpServerCodec(), new BodyLimit(), new IdleStateHandler(0, 0, IDLE_SECONDS, TimeUnit.SECONDS),
                handler);
    }

    /** The aggregator, with a JSON error instead of an empty 413. */
    private static final class BodyLimit extends HttpObjectAggregator {
        private static final String TOO_LARGE = "request body too large (at most 1 MiB)";

        BodyLimit() {
            super(MAX_BODY);
        }

        @Override
        protected Object newContinueResponse(HttpMessage start, int maxContentLength, ChannelPipeline pipeline) {
            Object answer = super.newContinueResponse(start, maxContentLength, pipeline);
            if (answer instanceof FullHttpResponse r && r.status().code() == HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE.code()) {
                ReferenceCountUtil.release(r);
                return ControlHandler.toHttp(ControlResponse.error(413, TOO_LARGE), false);
            }
            return answer;
        }

        @Override
        protected void handleOversizedMessage(ChannelHandlerContext ctx, HttpMessage oversized) throws Exception {
            if (oversized instanceof HttpRequest) {
                ControlHandler.write(ctx, ControlResponse.error(413, TOO_LARGE), false);
            } else {
                super.handleOversizedMessage(ctx, oversized);
            }
        }
    }
}
