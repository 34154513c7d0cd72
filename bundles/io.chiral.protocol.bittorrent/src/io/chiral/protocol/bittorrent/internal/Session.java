package io.chiral.protocol.bittorrent.internal;

import java.net.InetSocketAddress;
import java.util.List;
import java.util.Random;

import io.netty.channel.EventLoopGroup;

/** What a {@link Torrent} needs from the protocol component that runs it. */
interface Session {
    /** Our 20-byte peer id. */
    byte[] peerId();

    /** The port we accept peers on (0 when not listening). */
    int listenPort();

    EventLoopGroup group();

    /** Threads that check pieces' SHA-1 and write them, off the network threads. */
    java.util.concurrent.Executor disk();

    /** Our BEP 10 client name. */
    String clientName();

    /** Our {@code chiral} extension message (without nonce), or null when this node has no key to identify by. */
    Extension.ChiralHello chiralHello();

    /** An Ed25519 signature with this node's key (the one {@link #chiralHello()} names); null when it has none. */
    byte[] chiralSign(byte[] message);

    /**
     * Whether a peer may be sent another block now: false while the blocks written to all peers and not yet taken
     * by their sockets add up to the node's bound (each peer's own bound is its channel's write-buffer mark).
     */
    boolean uploadRoom();

    /** {@code bytes} (negative: written out or dropped) more are pending towards peers' sockets. */
    void uploadPending(long bytes);

    Random random();

    /**
     * The Chiral description ({@link Extension#encodeFileDescription}) of the stored file {@code torrent} is, when it
     * is a single-file torrent whose file has CID {@code cid}; null otherwise.
     */
    byte[] fileDescription(Torrent torrent, String cid);

    /** The running torrent with this info-hash, for an inbound handshake; null when none. */
    Torrent torrent(byte[] infoHash);

    /** Opens a connection to {@code address} for {@code torrent}. */
    void connect(Torrent torrent, InetSocketAddress address);

    /** Announces to the torrent's trackers; the peers found go to {@link Torrent#addPeers}. */
    void announce(Torrent torrent, Trackers.Event event, List<String> trackers);

    /** Looks the torrent up in the mainline DHT (and announces us there), when a DHT is available. */
    void dhtLookup(Torrent torrent);

    /** The torrent's state changed in a way worth saving (pieces verified, metadata, pause). */
    void changed(Torrent torrent);

    /** A file of the finished torrent changed on disk: it must stop seeding. */
    void seedingStopped(Torrent torrent);

    /** The torrent finished downloading (every piece verified). */
    void completed(Torrent torrent);

    /** Most connections per torrent. */
    int maxPeersPerTorrent();

    /** Regular unchoke slots per torrent (one optimistic slot comes on top). */
    int uploadSlots();

    /** How long a download may go without a usable source before it fails, by default; 0 = for ever. */
    int sourceTimeoutSeconds();
}
