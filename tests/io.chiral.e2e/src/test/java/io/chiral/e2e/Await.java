package io.chiral.e2e;

import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.function.Predicate;

/**
 * The one way the end-to-end tests wait: poll a condition until it holds or a deadline passes, then fail with what was
 * awaited and the last value observed. The only sleep of these tests is the pause between two polls here.
 */
final class Await {
    private static final Duration POLL = Duration.ofMillis(100);

    private Await() {
    }

    /** Polls {@code condition} until it is true; fails after {@code timeout}. */
    static void until(Duration timeout, String what, Callable<Boolean> condition) throws Exception {
        until(timeout, what, condition, Boolean.TRUE::equals);
    }

    /**
     * Polls {@code probe} until {@code done} accepts its value, and returns that value; fails after {@code timeout}
     * naming {@code what} and the last value (or exception) seen. An exception of the probe counts as "not yet"; an
     * {@link AssertionError} of the probe (e.g. the daemon died) ends the wait at once.
     */
    static <T> T until(Duration timeout, String what, Callable<T> probe, Predicate<? super T> done) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        Object last = "(nothing yet)";
        while (true) {
            try {
                T value = probe.call();
                if (done.test(value)) {
                    return value;
                }
                last = value;
            } catch (InterruptedException e) {
                throw e;
            } catch (Exception e) {
                last = e;
            }
            if (System.nanoTime() - deadline >= 0) {
                throw new AssertionError("timed out after " + timeout.toMillis() / 1000.0 + " s waiting for " + what
                        + "; last observed: " + last);
            }
            Thread.sleep(POLL.toMillis());
        }
    }

    /**
     * Polls {@code enough} every {@code every} for at most {@code window}: true as soon as it holds, false when the
     * window ends, which is no failure (the caller watched that long, e.g. for two choke rounds).
     */
    static boolean within(Duration window, Duration every, Callable<Boolean> enough) throws Exception {
        long deadline = System.nanoTime() + window.toNanos();
        while (!enough.call()) {
            if (System.nanoTime() - deadline >= 0) {
                return false;
            }
            Thread.sleep(every.toMillis());
        }
        return true;
    }
}
