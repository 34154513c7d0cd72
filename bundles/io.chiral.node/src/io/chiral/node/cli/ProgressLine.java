package io.chiral.node.cli;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Locale;

import com.google.gson.JsonObject;

/**
 * Renders a download's progress as one terminal line,
 * {@code [#####.....]  45%  28.8/64.0 MiB  85.1 MiB/s  2 sources}, with the rate measured over the last few
 * seconds of polls.
 */
final class ProgressLine {
    private static final int WIDTH = 20;
    private static final long WINDOW_NANOS = 3_000_000_000L;
    private static final int MAX_SAMPLES = 64;

    private record Sample(long nanos, long bytes) {
    }

    private final Deque<Sample> samples = new ArrayDeque<>();
    private int lastLength;

    /** The line for {@code progress} (a transfer's JSON) observed at {@code nanos}, padded to hide the previous one. */
    String render(JsonObject progress, long nanos) {
        long total = progress.get("totalBytes").getAsLong();
        long verified = progress.get("verifiedBytes").getAsLong();
        long fetched = progress.get("fetchedBytes").getAsLong();
        String state = progress.get("state").getAsString();
        samples.addLast(new Sample(nanos, fetched));
        while (samples.size() > MAX_SAMPLES || (samples.size() > 2 && nanos - samples.peekFirst().nanos() > WINDOW_NANOS)) {
            samples.removeFirst();
        }
        int pct = Units.percent(verified, total);
        int filled = total > 0 ? (int) Math.min(WIDTH, verified * WIDTH / total) : 0;
        StringBuilder b = new StringBuilder(96).append('[');
        b.append("#".repeat(filled)).append(".".repeat(WIDTH - filled)).append(']');
        b.append(String.format(Locale.ROOT, " %3d%%  ", pct));
        b.append(Units.mib(verified)).append('/').append(total >= 0 ? Units.mib(total) : "?").append(" MiB  ");
        b.append(Units.decimal(rate(), 1)).append(" MiB/s  ");
        int sources = Transfers.activeSources(progress);
        b.append(sources).append(sources == 1 ? " source" : " sources");
        if (!state.equals("DOWNLOADING")) {
            b.append("  ").append(state.toLowerCase(Locale.ROOT));
        }
        if (progress.get("status") != null && !progress.get("status").isJsonNull()) {
            b.append(" - ").append(progress.get("status").getAsString());
        }
        String line = b.toString();
        int pad = Math.max(0, lastLength - line.length());
        lastLength = line.length();
        return "\r" + line + " ".repeat(pad);
    }

    /** Erases the line drawn last. */
    String clear() {
        String s = "\r" + " ".repeat(lastLength) + "\r";
        lastLength = 0;
        return s;
    }

    private double rate() {
        if (samples.size() < 2) {
            return 0.0;
        }
        Sample first = samples.peekFirst();
        Sample last = samples.peekLast();
        return Units.mibPerSecond(Math.max(0, last.bytes() - first.bytes()), (last.nanos() - first.nanos()) / 1e9);
    }
}
