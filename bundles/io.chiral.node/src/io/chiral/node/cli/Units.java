package io.chiral.node.cli;

import java.util.Locale;

/** Human-readable sizes and rates. */
final class Units {
    static final double MIB = 1024.0 * 1024.0;

    private Units() {
    }

    /** Bytes as MiB with one decimal, without the unit. */
    static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f", bytes / MIB);
    }

    /** {@code bytes} over {@code seconds} in MiB/s, 0 when no time passed. */
    static double mibPerSecond(long bytes, double seconds) {
        return seconds > 0 ? bytes / MIB / seconds : 0.0;
    }

    static String decimal(double value, int places) {
        return String.format(Locale.ROOT, "%." + places + "f", value);
    }

    /** Percentage 0..100 of {@code part} in {@code total}; 0 while the total is unknown. */
    static int percent(long part, long total) {
        if (total <= 0) {
            return total == 0 ? 100 : 0;
        }
        return (int) Math.min(100, part * 100 / total);
    }

    /** A rate for tables: {@code 12.3M} (MiB/s), {@code 456K}, {@code 0}. */
    static String rate(long bytesPerSecond) {
        if (bytesPerSecond >= 1 << 20) {
            return decimal(bytesPerSecond / MIB, 1) + "M";
        }
        if (bytesPerSecond >= 1024) {
            return (bytesPerSecond / 1024) + "K";
        }
        return Long.toString(bytesPerSecond);
    }
}
