package io.chiral.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

import io.netty.channel.embedded.EmbeddedChannel;

/** {@link ConnectionLimiter} on embedded channels: caps, which connection makes room, request deadlines. */
class ConnectionLimiterTest {

    /** An accepted connection from {@code host}, admitted (or refused) by {@code limiter} as it becomes active. */
    private static final class Conn extends EmbeddedChannel {
        private final InetSocketAddress remote;

        Conn(ConnectionLimiter limiter, String host) throws Exception {
            super(false, false);
            remote = new InetSocketAddress(host, 40000);
            pipeline().addLast(limiter);
            register();
        }

        @Override
        protected SocketAddress remoteAddress0() {
            return remote;
        }
    }

    private static ConnectionLimiter limiter(int max, int perAddress, long first, long next) {
        return new ConnectionLimiter("test", new ConnectionLimiter.Limits(max, perAddress, first, next));
    }

    @Test
    void refusesMoreThanTheCapFromOneAddress() throws Exception {
        ConnectionLimiter l = limiter(10, 2, 0, 0);
        Conn a1 = new Conn(l, "10.0.0.1");
        Conn a2 = new Conn(l, "10.0.0.1");
        Conn a3 = new Conn(l, "10.0.0.1");
        Conn b1 = new Conn(l, "10.0.0.2");
        assertTrue(a1.isOpen() && a2.isOpen() && b1.isOpen());
        assertFalse(a3.isOpen(), "a third connection from one address is refused");
        assertEquals(new ConnectionLimiter.Stats(3, 3, 1, 0, 0), l.stats());
        a1.close();
        assertTrue(new Conn(l, "10.0.0.1").isOpen(), "room again once one of them closed");
    }

    @Test
    void whenFullClosesTheOldestConnectionWithoutARequestInWork() throws Exception {
        ConnectionLimiter l = limiter(2, 10, 0, 0);
        Conn c1 = new Conn(l, "10.0.0.1");
        Conn c2 = new Conn(l, "10.0.0.2");
        ConnectionLimiter.busy(c1);
        Conn c3 = new Conn(l, "10.0.0.3");
        assertTrue(c1.isOpen(), "a connection with a request in work is never closed for room");
        assertFalse(c2.isOpen(), "the idle one made room");
        assertTrue(c3.isOpen());
        ConnectionLimiter.busy(c3);
        Conn c4 = new Conn(l, "10.0.0.4");
        assertFalse(c4.isOpen(), "all busy: the new connection is refused");
        assertTrue(c1.isOpen() && c3.isOpen());
        assertEquals(new ConnectionLimiter.Stats(2, 3, 1, 1, 0), l.stats());
    }

    @Test
    void connectionsThatNeverSentARequestGoBeforeIdleKeepAliveOnes() throws Exception {
        ConnectionLimiter l = limiter(2, 10, 0, 0);
        Conn served = new Conn(l, "10.0.0.1");
        ConnectionLimiter.busy(served);
        ConnectionLimiter.idle(served);
        Conn silent = new Conn(l, "10.0.0.2");
        Conn next = new Conn(l, "10.0.0.3");
        assertFalse(silent.isOpen(), "a connection that never made a request is the least useful");
        assertTrue(served.isOpen() && next.isOpen());
        Conn another = new Conn(l, "10.0.0.4");
        assertFalse(next.isOpen(), "still the oldest without a request");
        assertTrue(served.isOpen() && another.isOpen());
    }

    @Test
    void closesConnectionsWithoutACompleteRequestInTime() throws Exception {
        ConnectionLimiter l = limiter(10, 10, 1000, 5000);
        Conn slow = new Conn(l, "10.0.0.1");
        Conn quick = new Conn(l, "10.0.0.2");
        slow.advanceTimeBy(999, TimeUnit.MILLISECONDS);
        slow.runScheduledPendingTasks();
        assertTrue(slow.isOpen());
        ConnectionLimiter.busy(quick);
        slow.advanceTimeBy(2, TimeUnit.MILLISECONDS);
        slow.runScheduledPendingTasks();
        assertFalse(slow.isOpen(), "no complete request within the first deadline");

        quick.advanceTimeBy(10, TimeUnit.SECONDS);
        quick.runScheduledPendingTasks();
        assertTrue(quick.isOpen(), "a request in work has no deadline");
        ConnectionLimiter.idle(quick);
        quick.advanceTimeBy(4999, TimeUnit.MILLISECONDS);
        quick.runScheduledPendingTasks();
        assertTrue(quick.isOpen());
        quick.advanceTimeBy(2, TimeUnit.MILLISECONDS);
        quick.runScheduledPendingTasks();
        assertFalse(quick.isOpen(), "no next request within the keep-alive deadline");
        assertEquals(new ConnectionLimiter.Stats(0, 2, 0, 0, 2), l.stats());
    }

    @Test
    void capsFollowTheOpenFileLimit() {
        long fds = ConnectionLimiter.openFileLimit();
        assertTrue(fds > 0, "the open-file limit is readable on Linux");
        int share = (int) Math.min(Integer.MAX_VALUE, Math.max(8, fds * 25 / 100));
        assertEquals(Math.min(4096, share), ConnectionLimiter.cap(0, 4096, 25));
        assertEquals(Math.min(10, share), ConnectionLimiter.cap(10, 4096, 25));
        assertTrue(ConnectionLimiter.cap(Integer.MAX_VALUE, 4096, 25) <= Math.max(8, fds / 4), "never above the share");
        assertThrows(IllegalArgumentException.class, () -> new ConnectionLimiter.Limits(0, 1, 0, 0));
    }
}
