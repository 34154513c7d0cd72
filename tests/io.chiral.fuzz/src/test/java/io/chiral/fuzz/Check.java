package io.chiral.fuzz;

/** Invariants of decoded values: a violation is a finding like an unexpected exception. */
final class Check {
    private Check() {
    }

    static void that(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError("invariant violated: " + what);
        }
    }
}
