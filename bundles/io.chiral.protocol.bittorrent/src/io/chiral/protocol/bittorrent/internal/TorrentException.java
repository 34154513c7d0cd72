package io.chiral.protocol.bittorrent.internal;

/** Input that is not a valid torrent, magnet link or peer-wire message; the message says what is wrong. */
public final class TorrentException extends Exception {
    private static final long serialVersionUID = 1L;

    public TorrentException(String message) {
        super(message);
    }

    public TorrentException(String message, Throwable cause) {
        super(message, cause);
    }
}
