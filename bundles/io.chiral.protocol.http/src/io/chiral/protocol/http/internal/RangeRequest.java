package io.chiral.protocol.http.internal;

import java.util.Locale;

/**
 * What a {@code Range} request header asks of a representation of a known size. Only single byte ranges are
 * honoured: {@code bytes=a-b}, {@code bytes=a-} and {@code bytes=-n}. A header with several ranges, another
 * unit, or a syntax error is ignored (the whole representation is served with 200), as RFC 9110 §14.2 allows;
 * a well-formed single range that starts at or beyond the end, or a zero-length suffix, is unsatisfiable (416).
 */
sealed interface RangeRequest {

    /** No usable range: serve everything. */
    record Whole() implements RangeRequest {
    }

    /** Bytes {@code first..last} inclusive, both within the representation. */
    record Partial(long first, long last) implements RangeRequest {
        long length() {
            return last - first + 1;
        }
    }

    /** A valid range that selects nothing of this representation. */
    record Unsatisfiable() implements RangeRequest {
    }

    RangeRequest WHOLE = new Whole();
    RangeRequest UNSATISFIABLE = new Unsatisfiable();

    /** Interprets {@code header} (may be null) for a representation of {@code size} bytes. */
    static RangeRequest parse(String header, long size) {
        if (header == null) {
            return WHOLE;
        }
        String h = header.strip();
        int eq = h.indexOf('=');
        if (eq < 0 || !h.substring(0, eq).strip().toLowerCase(Locale.ROOT).equals("bytes")) {
            return WHOLE;
        }
        String spec = h.substring(eq + 1).strip();
        if (spec.indexOf(',') >= 0) {
            return WHOLE;
        }
        int dash = spec.indexOf('-');
        if (dash < 0) {
            return WHOLE;
        }
        String a = spec.substring(0, dash);
        String b = spec.substring(dash + 1);
        if (a.isEmpty()) {
            long suffix = digits(b);
            if (suffix < 0) {
                return WHOLE;
            }
            if (suffix == 0 || size == 0) {
                return UNSATISFIABLE;
            }
            return new Partial(Math.max(0, size - suffix), size - 1);
        }
        long first = digits(a);
        long last = b.isEmpty() ? Long.MAX_VALUE : digits(b);
        if (first < 0 || last < 0 || last < first) {
            return WHOLE;
        }
        if (first >= size) {
            return UNSATISFIABLE;
        }
        return new Partial(first, Math.min(last, size - 1));
    }

    /** Non-negative decimal, saturating at Long.MAX_VALUE; -1 when {@code s} is empty or not all digits. */
    private static long digits(String s) {
        if (s.isEmpty()) {
            return -1;
        }
        long v = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            int d = c - '0';
            v = v > (Long.MAX_VALUE - d) / 10 ? Long.MAX_VALUE : v * 10 + d;
        }
        return v;
    }
}
