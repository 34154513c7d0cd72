package io.chiral.bencode;

/** Input that is not canonical bencode, or exceeds a limit; the message says what and at which byte. */
public final class BencodeException extends Exception {
    private static final long serialVersionUID = 1L;
    private final int offset;

    public BencodeException(String message, int offset) {
        super(message + " at byte " + offset);
        this.offset = offset;
    }

    public int offset() {
        return offset;
    }
}
