package io.chiral.net;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler.Sharable;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ServerChannel;
import io.netty.util.AttributeKey;

/**
 * Bounds the connections one listening socket keeps: at most {@link Limits#maxConnections()} in all and
 * {@link Limits#maxPerAddress()} from one remote address, and a deadline for each connection to present a complete
 * request. Add one instance as the handler of the listening channel ({@code ServerBootstrap.handler}), where it
 * refuses connections as they are accepted, and first in the pipeline of every accepted channel, where it runs the
 * deadlines (it is sharable; in the accepted channels only, it admits them as they become active). The
 * protocol handler calls {@link #busy(Channel)} when a complete request is in work and {@link #idle(Channel)} when
 * it has answered it.
 * <ul>
 * <li>A connection from an address that already holds {@code maxPerAddress} connections is closed at once.</li>
 * <li>When {@code maxConnections} are open, the least useful connection is closed to make room: the oldest one
 * that never had a request in work, else the one idle for longest since its last answer; when every connection
 * has a request in work the new one is closed instead.</li>
 * <li>A connection with no complete request within {@code firstRequestMillis} of being accepted, or within
 * {@code nextRequestMillis} of its last answer, is closed (a client trickling a header byte by byte included).</li>
 * </ul>
 * Thread-safe: channels of one listener may live on different event loops.
 */
@Sharable
public final class ConnectionLimiter extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = Logger.getLogger(ConnectionLimiter.class.getName());
    private static final AttributeKey<Conn> CONN = AttributeKey.valueOf("io.chiral.net.ConnectionLimiter.conn@"
            + System.identityHashCode(ConnectionLimiter.class));
    private static final long WARN_EVERY_NANOS = TimeUnit.MINUTES.toNanos(1);

    /**
     * Limits of one listener.
     *
     * @param maxConnections     connections open at once (at least 1)
     * @param maxPerAddress      connections open at once from one remote address (at least 1)
     * @param firstRequestMillis time from accepting a connection to its first complete request; 0 = no deadline
     * @param nextRequestMillis  time from an answer to the next complete request; 0 = no deadline
     */
    public record Limits(int maxConnections, int maxPerAddress, long firstRequestMillis, long nextRequestMillis) {
        public Limits {
            if (maxConnections < 1 || maxPerAddress < 1) {
                throw new IllegalArgumentException("connection limits must be positive: " + maxConnections + " in all, "
                        + maxPerAddress + " per address");
            }
            if (firstRequestMillis < 0 || nextRequestMillis < 0) {
                throw new IllegalArgumentException("request deadlines must not be negative");
            }
        }
    }

    /** Counters since the limiter was made, and the connections open now. */
    public record Stats(int open, long accepted, long refused, long evicted, long expired) {
    }

    private enum State { FRESH, BUSY, IDLE }

    /** One admitted connection; all fields guarded by the limiter's lock. */
    private static final class Conn {
        final Channel channel;
        final InetAddress address;
        State state = State.FRESH;
        /** Counts changes of state, so that a deadline set for an earlier one does nothing. */
        int generation;
        boolean released;
        ScheduledFuture<?> deadline;
        ConnectionLimiter owner;

        Conn(Channel channel, InetAddress address, ConnectionLimiter owner) {
            this.channel = channel;
            this.address = address;
            this.owner = owner;
        }
    }

    private final String name;
    private final Object lock = new Object();
    private final Map<InetAddress, Integer> perAddress = new HashMap<>();
    private final LinkedHashSet<Conn> fresh = new LinkedHashSet<>();
    private final LinkedHashSet<Conn> idle = new LinkedHashSet<>();
    private Limits limits;
    private int open;
    private int closing;
    private long accepted;
    private long refused;
    private long evicted;
    private long expired;
    private long lastWarning = System.nanoTime() - WARN_EVERY_NANOS;

    /** @param name what the listener is, for log lines ({@code "HTTP"}, {@code "control"}) */
    public ConnectionLimiter(String name, Limits limits) {
        this.name = name;
        this.limits = limits;
    }

    /** Applies new limits to connections accepted from now on (and to deadlines set from now on). */
    public void limits(Limits next) {
        synchronized (lock) {
            limits = next;
        }
    }

    public Limits limits() {
        synchronized (lock) {
            return limits;
        }
    }

    public Stats stats() {
        synchronized (lock) {
            return new Stats(open, accepted, refused, evicted, expired);
        }
    }

    /**
     * On the listening channel: admits or refuses each accepted channel before it is registered, so that a refused
     * connection's descriptor is released at once, even while the event loops are busy.
     */
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
        if (msg instanceof Channel child && ctx.channel() instanceof ServerChannel) {
            if (child.attr(CONN).get() == null && !admit(child)) {
                child.unsafe().closeForcibly();
                return;
            }
        }
        super.channelRead(ctx, msg);
    }

    /**
     * On an accepted channel: admits it unless the listening channel did, and starts its first deadline; from now
     * on it may be closed for room.
     */
    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
        if (ctx.channel() instanceof ServerChannel) {
            super.channelActive(ctx); // the listening channel itself
            return;
        }
        Conn c = ctx.channel().attr(CONN).get();
        if (c == null) {
            if (!admit(ctx.channel())) {
                ctx.close();
                return;
            }
            c = ctx.channel().attr(CONN).get();
        }
        synchronized (lock) {
            if (!c.released && c.state == State.FRESH && c.deadline == null) {
                fresh.add(c); // registered and active now: one to close for room if need be
                c.deadline = schedule(c, limits.firstRequestMillis());
            }
        }
        super.channelActive(ctx);
    }

    /**
     * Marks {@code channel} as having a complete request in work: it is not closed for room and has no deadline
     * until {@link #idle(Channel)}. No effect on channels that no limiter admitted.
     */
    public static void busy(Channel channel) {
        Conn c = channel.attr(CONN).get();
        if (c != null) {
            c.owner.toBusy(c);
        }
    }

    /**
     * Marks {@code channel} as waiting for its next request: it may be closed for room, and is closed when no
     * complete request came within the limiter's {@code nextRequestMillis}.
     */
    public static void idle(Channel channel) {
        Conn c = channel.attr(CONN).get();
        if (c != null) {
            c.owner.toIdle(c);
        }
    }

    private boolean admit(Channel ch) {
        SocketAddress remote = ch.remoteAddress();
        InetAddress address = remote instanceof InetSocketAddress isa ? isa.getAddress() : null;
        Conn victim = null;
        String warning = null;
        Conn c = new Conn(ch, address, this);
        synchronized (lock) {
            int fromAddress = perAddress.getOrDefault(address, 0);
            if (fromAddress >= limits.maxPerAddress()) {
                refused++;
                warning = fromAddress + " connections from " + (address == null ? remote : address.getHostAddress())
                        + " (the most from one address); refusing more";
            } else {
                if (open >= limits.maxConnections()) {
                    victim = closing < maxClosing() ? leastUseful() : null;
                    if (victim == null) {
                        refused++;
                        warning = open + " connections open (the most), each with a request in work or closing;"
                                + " refusing more";
                    } else {
                        evicted++;
                        removeLocked(victim);
                        closing++;
                        warning = open + 1 + " connections open (the most); closing the least useful ones for new ones";
                    }
                }
                if (victim != null || open < limits.maxConnections()) {
                    accepted++;
                    open++;
                    perAddress.merge(address, 1, Integer::sum);
                    ch.attr(CONN).set(c);
                }
            }
            if (warning != null && System.nanoTime() - lastWarning >= WARN_EVERY_NANOS) {
                lastWarning = System.nanoTime();
                warning = name + ": " + warning + " (so far " + accepted + " accepted, " + refused + " refused, " + evicted
                        + " closed for room, " + expired + " without a complete request in time)";
            } else {
                warning = null;
            }
        }
        if (warning != null) {
            LOG.warning(warning);
        }
        if (victim != null) {
            victim.channel.close().addListener(f -> {
                synchronized (lock) {
                    closing--;
                }
            });
        }
        if (ch.attr(CONN).get() != c) {
            return false;
        }
        ch.closeFuture().addListener(f -> release(c));
        return true;
    }

    /**
     * Connections closed for room whose descriptors are not released yet (their event loops close them): while
     * this many are pending, new connections are refused rather than others closed, which bounds the descriptors
     * of a listener to {@code maxConnections} plus this.
     */
    private int maxClosing() {
        return Math.max(8, limits.maxConnections() / 8);
    }

    /** The oldest connection that never had a request in work, else the one idle longest; null when all are busy. */
    private Conn leastUseful() {
        if (!fresh.isEmpty()) {
            return fresh.iterator().next();
        }
        return idle.isEmpty() ? null : idle.iterator().next();
    }

    private void toBusy(Conn c) {
        synchronized (lock) {
            if (c.released || c.state == State.BUSY) {
                return;
            }
            cancelDeadline(c);
            fresh.remove(c);
            idle.remove(c);
            c.state = State.BUSY;
            c.generation++;
        }
    }

    private void toIdle(Conn c) {
        synchronized (lock) {
            if (c.released || c.state == State.IDLE) {
                return;
            }
            cancelDeadline(c);
            fresh.remove(c);
            c.state = State.IDLE;
            c.generation++;
            idle.add(c);
            c.deadline = schedule(c, limits.nextRequestMillis());
        }
    }

    private ScheduledFuture<?> schedule(Conn c, long millis) {
        if (millis <= 0) {
            return null;
        }
        int generation = c.generation;
        return c.channel.eventLoop().schedule(() -> expire(c, generation), millis, TimeUnit.MILLISECONDS);
    }

    private void expire(Conn c, int generation) {
        synchronized (lock) {
            if (c.released || c.generation != generation || c.state == State.BUSY) {
                return;
            }
            expired++;
        }
        LOG.fine(() -> name + ": closing " + c.channel.remoteAddress() + ": no complete request in time");
        c.channel.close();
    }

    private void release(Conn c) {
        synchronized (lock) {
            removeLocked(c);
        }
    }

    private void removeLocked(Conn c) {
        if (c.released) {
            return;
        }
        c.released = true;
        cancelDeadline(c);
        fresh.remove(c);
        idle.remove(c);
        open--;
        perAddress.computeIfPresent(c.address, (a, n) -> n > 1 ? n - 1 : null);
    }

    private static void cancelDeadline(Conn c) {
        if (c.deadline != null) {
            c.deadline.cancel(false);
            c.deadline = null;
        }
    }

    /**
     * The soft limit on open files of this process ({@code RLIMIT_NOFILE}, from {@code /proc/self/limits}), or -1
     * when it cannot be read. A Java process cannot raise it, so listeners size their caps to it.
     */
    public static long openFileLimit() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/limits"))) {
                if (line.startsWith("Max open files")) {
                    String[] f = line.substring("Max open files".length()).strip().split("\\s+");
                    return f[0].equals("unlimited") ? Long.MAX_VALUE : Long.parseLong(f[0]);
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or unreadable
        }
        return -1;
    }

    /**
     * A listener's cap on connections: {@code configured} (0 = {@code ceiling}), but never more than
     * {@code percent} % of the process's open-file limit, so that the listeners together leave room for files, the
     * other sockets and the control channel; when that limit is unknown, a limit of 4096 is assumed.
     */
    public static int cap(int configured, int ceiling, int percent) {
        long fds = openFileLimit();
        if (fds <= 0) {
            fds = 4096;
        }
        long share = Math.max(8, fds * percent / 100);
        long wanted = configured > 0 ? configured : ceiling;
        return (int) Math.max(1, Math.min(wanted, share));
    }
}
