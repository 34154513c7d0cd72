package io.chiral.api;

import java.util.List;
import java.util.concurrent.CompletionStage;

/**
 * The SPI a transport (HTTP, BitTorrent, WebTorrent, ed2k, Megatorrent …) registers as an OSGi service. The
 * {@link ProtocolManager} tracks these services dynamically: a protocol bundle can be installed, started,
 * stopped and uninstalled while a node runs.
 *
 * <p>Downloads are driven by the core's transfer engine so that one file can come from several peers and
 * protocols at once: a protocol supplies {@link #metadata metadata} and {@link #openSource chunk sources}; the
 * engine verifies and stores, and hands the user a {@link TransferHandle} (pause / resume / cancel). Seeding is
 * the protocol's side: {@link #seed}, {@link #stopSeeding}, {@link #peers}.
 *
 * <p>Service property {@value #PROTOCOL_PROPERTY} must carry {@link #name()}.
 */
public interface ContentProtocol {
    /** Service property naming the protocol. */
    String PROTOCOL_PROPERTY = "chiral.protocol";

    /** Short lower-case name: {@code http}, {@code bittorrent} … */
    String name();

    /**
     * Whether this protocol can resolve {@code identifier} by itself (a URL of its scheme, a magnet link …).
     * A plain CID is resolved through peers given to {@link #metadata}.
     */
    boolean canHandle(String identifier);

    /**
     * Resolves an identifier this protocol {@link #canHandle handles} (a URL of its scheme …) into the CID it names
     * and the peers to fetch it from. The default fails: a protocol that handles no identifiers of its own only
     * reaches peers given to {@link #metadata}.
     */
    default CompletionStage<Resolution> resolve(String identifier) {
        return java.util.concurrent.CompletableFuture.failedFuture(
                new IllegalArgumentException(name() + " cannot resolve '" + identifier + "'"));
    }

    /** What {@link #resolve} found: the file and where to get it. */
    record Resolution(FileId id, List<PeerInfo> peers) {
    }

    /** Addresses this node listens on for this protocol ({@code host:port}); empty when not listening. */
    List<String> listenAddresses();

    /** Asks {@code peer} for the metadata of {@code id}. The engine validates what comes back. */
    CompletionStage<FileMetadata> metadata(FileId id, PeerInfo peer);

    /** Opens a source for the chunks of {@code metadata} at {@code peer}. Does not block. */
    ChunkSource openSource(FileMetadata metadata, PeerInfo peer);

    /** Starts offering a complete (or partial) file from the {@link ContentStore} to this protocol's peers. */
    void seed(FileMetadata metadata);

    /** Stops offering a file. */
    void stopSeeding(FileId id);

    /** Peers this protocol currently exchanges data of {@code id} with. */
    List<PeerInfo> peers(FileId id);

    /**
     * Starts a transfer this protocol runs by itself, for an identifier it {@link #canHandle handles} but that does
     * not resolve to a CID and chunk hashes up front (a magnet link or a {@code .torrent}: BitTorrent verifies its
     * own pieces). Empty when the protocol leaves transfers to the core's engine, which is the default.
     *
     * @throws IllegalArgumentException for an identifier this protocol cannot use, with a message for the user
     */
    default java.util.Optional<TransferHandle> startTransfer(DownloadRequest request) {
        return java.util.Optional.empty();
    }

    /**
     * Shares a stored file in this protocol's own terms and says how others can reach it, for example
     * {@code magnet} and {@code torrent} (the path of the written {@code .torrent}) for BitTorrent. {@code options}
     * are protocol-specific (BitTorrent: {@code tracker}). The default only {@link #seed seeds}.
     *
     * @throws IllegalArgumentException for unusable options, with a message for the user
     * @throws java.io.UncheckedIOException when the file cannot be read
     */
    default java.util.Map<String, String> share(FileMetadata metadata, java.util.Map<String, List<String>> options) {
        seed(metadata);
        return java.util.Map.of();
    }

    /**
     * The peers of one transfer or shared file ({@code id}: a CID's hex or this protocol's own transfer id) with
     * their state; empty when this protocol has none.
     */
    default List<PeerStatus> peerStatus(String id) {
        return List.of();
    }

    /** Transfers this protocol runs by itself (see {@link #startTransfer}), running or finished, oldest first. */
    default List<TransferHandle> transfers() {
        return List.of();
    }

    /**
     * Whether {@link #metadata} and {@link #openSource} reach peers by CID, so that a provider's address for this
     * protocol is a source for the core's engine. A protocol with its own content addressing (BitTorrent) says no.
     */
    default boolean fetchesByCid() {
        return true;
    }
}
