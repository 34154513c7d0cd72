package io.chiral.api;

import java.net.InetSocketAddress;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionStage;

/**
 * One running Kademlia DHT instance speaking KRPC (BEP 5) over UDP. A node runs two, told apart by the service
 * property {@value #NETWORK_PROPERTY}: {@value #MAINLINE} (the public BitTorrent DHT: BEP 5, 42, 44) and
 * {@value #CHIRAL} (the Chiral network, whose file and provider records are reached through
 * {@link ContentDirectory}).
 *
 * <p>Every operation is asynchronous; lookups are iterative with three queries in flight. Values that come off
 * the network are verified before they are returned (info-hash of an immutable item, signature of a mutable one).
 */
public interface Dht {
    String NETWORK_PROPERTY = "chiral.dht.network";
    String MAINLINE = "mainline";
    String CHIRAL = "chiral";

    /** {@value #MAINLINE} or {@value #CHIRAL}. */
    String network();

    /** This node's 160-bit DHT id, 40 hex. */
    String nodeId();

    /** The UDP address the instance is bound to. */
    InetSocketAddress address();

    /** Routing table and traffic counters. */
    Stats stats();

    /** The contacts of the routing table, closest to this node first. */
    List<Contact> contacts();

    /** Queries the given addresses and then looks up this node's own id, filling the routing table. */
    CompletionStage<Integer> bootstrap(List<InetSocketAddress> nodes);

    /** Peers announced for {@code infoHash} (20 bytes), from an iterative {@code get_peers} lookup. */
    CompletionStage<Lookup<List<InetSocketAddress>>> getPeers(byte[] infoHash);

    /** Announces that this host serves {@code infoHash} on TCP {@code port}; completes with the nodes that stored it. */
    CompletionStage<Integer> announce(byte[] infoHash, int port);

    /** BEP 44: stores an immutable bencoded value; completes with its target (SHA-1 of the bencoded value). */
    CompletionStage<byte[]> putImmutable(byte[] bencodedValue);

    /** BEP 44: the immutable item with this target, verified against it. */
    CompletionStage<Lookup<Optional<byte[]>>> getImmutable(byte[] target);

    /**
     * BEP 44: stores a mutable item signed with the Ed25519 key whose 32-byte seed is {@code privateSeed}; {@code seq}
     * must grow with every put. Completes with the number of nodes that stored it.
     */
    CompletionStage<Integer> putMutable(byte[] privateSeed, byte[] salt, byte[] bencodedValue, long seq);

    /** BEP 44: the mutable item of {@code publicKey} and {@code salt} with the highest {@code seq}, signature checked. */
    CompletionStage<Lookup<Optional<MutableItem>>> getMutable(byte[] publicKey, byte[] salt);

    /** A routing table entry. */
    record Contact(String nodeId, InetSocketAddress address, long lastSeenMillis, int failures) {
    }

    /** A verified BEP 44 mutable item. */
    record MutableItem(byte[] publicKey, byte[] salt, long seq, byte[] bencodedValue, byte[] signature) {
    }

    /** A lookup's result and what it took: nodes queried, nodes that answered, hop count, time. */
    record Lookup<T>(T value, int queried, int responded, int hops, long millis) {
    }

    /** Counters since the instance started. */
    record Stats(String network, String nodeId, InetSocketAddress address, int routingTableSize, int buckets,
            int storedPeers, int storedItems, int storedRecords, long queriesIn, long queriesOut, long responsesIn,
            long timeouts, long droppedPackets) {
    }
}
