package io.chiral.api;

import java.util.HexFormat;
import java.util.Objects;

/**
 * A content identifier (CID): the SHA-256 of a whole file as 64 lowercase hex characters, no {@code 0x}.
 */
public final class FileId implements Comparable<FileId> {
    private static final HexFormat HEX = HexFormat.of();
    private final String hex;

    private FileId(String hex) {
        this.hex = hex;
    }

    /**
     * Parses a CID. Accepts upper case (normalised to lower case) but nothing else: no prefix, no whitespace.
     *
     * @throws IllegalArgumentException with a message fit for a user when the text is not a CID
     */
    public static FileId parse(String text) {
        Objects.requireNonNull(text, "cid");
        if (text.length() != 64) {
            throw new IllegalArgumentException("not a CID: expected 64 hex characters (SHA-256), got "
                    + text.length() + " characters: '" + abbreviate(text) + "'");
        }
        String lower = text.toLowerCase(java.util.Locale.ROOT);
        for (int i = 0; i < 64; i++) {
            char c = lower.charAt(i);
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
                throw new IllegalArgumentException("not a CID: '" + abbreviate(text) + "' has a non-hex character at position " + i);
            }
        }
        return new FileId(lower);
    }

    /** True when {@code text} is a well-formed CID. */
    public static boolean isCid(String text) {
        if (text == null || text.length() != 64) {
            return false;
        }
        for (int i = 0; i < 64; i++) {
            if (Character.digit(text.charAt(i), 16) < 0) {
                return false;
            }
        }
        return true;
    }

    public static FileId of(byte[] sha256) {
        if (sha256.length != 32) {
            throw new IllegalArgumentException("a CID is a 32-byte SHA-256, got " + sha256.length + " bytes");
        }
        return new FileId(HEX.formatHex(sha256));
    }

    public byte[] bytes() {
        return HEX.parseHex(hex);
    }

    public String hex() {
        return hex;
    }

    /** The first 12 characters, for logs and compact listings. */
    public String shortHex() {
        return hex.substring(0, 12);
    }

    private static String abbreviate(String s) {
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof FileId f && f.hex.equals(hex);
    }

    @Override
    public int hashCode() {
        return hex.hashCode();
    }

    @Override
    public int compareTo(FileId o) {
        return hex.compareTo(o.hex);
    }

    @Override
    public String toString() {
        return hex;
    }
}
