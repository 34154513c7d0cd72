package io.chiral.osgi.tests;

import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.function.Predicate;

/**
 * The one way these OSGi tests wait for what components do on their own threads: poll until a condition holds or a
 * deadline passes, then fail naming what was awaited and the last value seen.
 */
final class Await {
    private static final long POLL_MILLIS = 50;

    private Await() {
    }

    /** Polls {@code condition} until it is true; fails after {@code timeout}. */
    static void until(Duration timeout, String what, Callable<Boolean> condition) throws Exception {
        until(timeout, what, condition, Boolean.TRUE::equals);
    }

    /** Polls {@code probe} until {@code done} accepts its value and returns that value; fails after {@code timeout}. */
    static <T> T until(Duration timeout, String what, Callable<T> probe, Predicate<? super T> done) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            T value = probe.call();
            if (done.test(value)) {
                return value;
            }
            if (System.nanoTime() - deadline >= 0) {
                throw new AssertionError("timed out after " + timeout.toMillis() / 1000.0 + " s waiting for " + what
                        + "; last observed: " + value);
            }
            Thread.sleep(POLL_MILLIS);
        }
    }
}
