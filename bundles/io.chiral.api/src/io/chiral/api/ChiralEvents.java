package io.chiral.api;

/** EventAdmin topics and property keys the node posts. */
public final class ChiralEvents {
    private ChiralEvents() {
    }

    public static final String TRANSFER_STARTED = "io/chiral/transfer/STARTED";
    public static final String TRANSFER_COMPLETED = "io/chiral/transfer/COMPLETED";
    public static final String TRANSFER_FAILED = "io/chiral/transfer/FAILED";
    public static final String TRANSFER_CANCELLED = "io/chiral/transfer/CANCELLED";
    public static final String PROTOCOL_ADDED = "io/chiral/protocol/ADDED";
    public static final String PROTOCOL_REMOVED = "io/chiral/protocol/REMOVED";
    public static final String FILE_ADDED = "io/chiral/store/ADDED";
    public static final String FILE_REMOVED = "io/chiral/store/REMOVED";

    /** CID as hex string. */
    /** A DHT instance joined its network (its routing table was empty before); property {@link #PROP_NETWORK}. */
    public static final String DHT_JOINED = "io/chiral/dht/JOINED";

    public static final String PROP_CID = "cid";
    public static final String PROP_NETWORK = "network";
    /** Protocol name. */
    public static final String PROP_PROTOCOL = "protocol";
    /** Map of source label to verified bytes it delivered (for payment settlement). */
    public static final String PROP_BYTES_PER_SOURCE = "bytesPerSource";
    public static final String PROP_SIZE = "size";
    public static final String PROP_ERROR = "error";
}
