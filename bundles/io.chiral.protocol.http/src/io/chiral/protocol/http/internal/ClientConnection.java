package io.chiral.protocol.http.internal;

import java.io.IOException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import io.chiral.api.PeerInfo;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.concurrent.ScheduledFuture;

/**
 * One keep-alive connection to a peer, running one {@link Exchange} at a time. A request fails when no response
 * data arrives for the request timeout, when the response is not acceptable, or when the connection breaks; the
 * connection is closed in each case. All state but the channel lives on the channel's event loop.
 */
final class ClientConnection extends SimpleChannelInboundHandler<HttpObject> {

    /** What the owner of a connection hears from it; called on the connection's event loop. */
    interface Listener {
        /** Connected: ready for a first exchange. */
        void connected(ClientConnection c);

        /** Finished an exchange and stays open for the next. */
        void idle(ClientConnection c);

        /** The peer closed a reused connection before answering {@code e}: send it again (once) elsewhere. */
        void retry(Exchange<?> e);

        /** Gone for good; {@code cause} is set when it never connected. Called once. */
        void closed(ClientConnection c, IOException cause);
    }

    private final PeerInfo peer;
    private final long timeoutMillis;
    private final Listener listener;
    private final AtomicBoolean closedReported = new AtomicBoolean();
    private volatile Channel channel;
    private volatile boolean closing;
    private volatile String closeReason = "connection closed";

    // event loop only
    private Exchange<?> current;
    private int completed;
    private long lastActivity;
    private boolean keepAlive;
    private ScheduledFuture<?> timer;

    ClientConnection(PeerInfo peer, long timeoutMillis, Listener listener) {
        this.peer = peer;
        this.timeoutMillis = timeoutMillis;
        this.listener = listener;
    }

    PeerInfo peer() {
        return peer;
    }

    /** Takes the connect attempt this connection runs on. */
    void attach(ChannelFuture connect) {
        channel = connect.channel();
        connect.addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess()) {
                reportClosed(closing ? Failures.of(peer, closeReason) : Failures.of(peer, f.cause()));
            } else if (closing) {
                f.channel().close();
            } else {
                listener.connected(this);
            }
        });
        if (closing) {
            channel.close();
        }
    }

    /** The connection could not even be attempted. */
    void attachFailed(IOException cause) {
        reportClosed(cause);
    }

    /** Sends {@code e}; the connection must be idle (just connected, or reported {@link Listener#idle}). */
    void send(Exchange<?> e) {
        Channel ch = channel;
        try {
            ch.eventLoop().execute(() -> start(ch, e));
        } catch (RejectedExecutionException ex) {
            e.fail(Failures.of(peer, "the node's network service is stopping"));
            ch.close();
        }
    }

    /** Closes the connection; a running exchange fails with {@code reason}. Safe from any thread, any time. */
    void close(String reason) {
        closeReason = reason;
        closing = true;
        Channel ch = channel;
        if (ch == null) {
            return;
        }
        try {
            ch.eventLoop().execute(() -> fail(Failures.of(peer, reason), false));
        } catch (RejectedExecutionException ex) {
            ch.close();
        }
    }

    private void start(Channel ch, Exchange<?> e) {
        if (current != null) {
            e.fail(Failures.of(peer, "internal error: connection busy"));
            return;
        }
        if (closing) {
            e.fail(Failures.of(peer, closeReason));
            return;
        }
        current = e;
        keepAlive = false;
        touch();
        timer = ch.eventLoop().schedule(this::checkTimeout, timeoutMillis, TimeUnit.MILLISECONDS);
        ch.writeAndFlush(e.request(peer.address())).addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess() && current == e) {
                fail(Failures.of(peer, f.cause()), Failures.isTransport(f.cause()));
            }
        });
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, HttpObject msg) {
        Exchange<?> e = current;
        if (e == null) {
            ctx.close(); // nothing was asked: a peer talking out of turn is not to be trusted
            return;
        }
        touch();
        try {
            if (msg.decoderResult().isFailure()) {
                Throwable cause = msg.decoderResult().cause();
                throw new IOException("malformed HTTP response: " + (cause != null && cause.getMessage() != null
                        ? Failures.oneLine(cause.getMessage()) : "unparsable"));
            }
            if (msg instanceof HttpResponse r) {
                keepAlive = HttpUtil.isKeepAlive(r);
                e.head(r);
            }
            if (msg instanceof HttpContent c) {
                e.body(c.content());
                if (c instanceof LastHttpContent) {
                    complete(ctx, e);
                }
            }
        } catch (IOException ex) {
            fail(Failures.of(peer, ex.getMessage()), false);
        }
    }

    private void complete(ChannelHandlerContext ctx, Exchange<?> e) {
        cancelTimer();
        current = null;
        completed++;
        try {
            e.finish();
        } catch (IOException ex) {
            e.fail(Failures.of(peer, ex.getMessage()));
            ctx.close();
            return;
        }
        if (keepAlive && !e.lastOnConnection() && !closing && ctx.channel().isActive()) {
            listener.idle(this);
        } else {
            ctx.close();
        }
    }

    /**
     * Ends the running exchange (if any) with {@code cause} and closes the connection. With {@code transport}
     * set, an exchange that got no answer on a connection that served others before is handed back for one
     * retry instead: the peer most likely closed an idle keep-alive connection just as the request went out.
     */
    private void fail(IOException cause, boolean transport) {
        cancelTimer();
        Exchange<?> e = current;
        current = null;
        if (e != null) {
            if (transport && !closing && completed > 0 && !e.started() && e.markRetried()) {
                listener.retry(e);
            } else {
                e.fail(cause);
            }
        }
        Channel ch = channel;
        if (ch != null) {
            ch.close();
        }
    }

    private void checkTimeout() {
        timer = null;
        if (current == null) {
            return;
        }
        long quietMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - lastActivity);
        if (quietMillis >= timeoutMillis) {
            fail(Failures.of(peer, current.started() ? "response stalled: no data for " + timeoutMillis + " ms"
                    : "no response within " + timeoutMillis + " ms"), false);
        } else {
            timer = channel.eventLoop().schedule(this::checkTimeout, timeoutMillis - quietMillis, TimeUnit.MILLISECONDS);
        }
    }

    private void touch() {
        lastActivity = System.nanoTime();
    }

    private void cancelTimer() {
        if (timer != null) {
            timer.cancel(false);
            timer = null;
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        Exchange<?> e = current;
        if (e != null) {
            String why = closing ? closeReason
                    : e.started() ? "connection closed by peer before the response was complete"
                    : "connection closed by peer before it answered";
            fail(Failures.of(peer, why), !closing);
        }
        reportClosed(null);
        super.channelInactive(ctx);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        fail(Failures.of(peer, cause), Failures.isTransport(cause));
    }

    private void reportClosed(IOException cause) {
        if (closedReported.compareAndSet(false, true)) {
            listener.closed(this, cause);
        }
    }
}
