package io.chiral.api;

import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletionStage;

/**
 * The Chiral network's records (on the {@value Dht#CHIRAL} DHT): file metadata under the CID, provider records
 * (who serves a file over which protocols, wallet, price, chunks), and the namespaced secondary keys
 * {@code info_hash_idx::<btih>} → CID and {@code keyword_idx::<word>} → CIDs. Every record is signed by its
 * publisher's {@link NodeKey}; records with a missing or bad signature are never returned.
 */
public interface ContentDirectory {
    String INFO_HASH_PREFIX = "info_hash_idx::";
    String KEYWORD_PREFIX = "keyword_idx::";
    String PROVIDERS_PREFIX = "providers::";

    /** Publishes (now, and again until {@link #unpublish}) this node as a provider of {@code file}. */
    CompletionStage<Integer> publish(FileMetadata file, Optional<String> btih);

    /** Stops republishing {@code id} (records already stored expire on their own). */
    void unpublish(FileId id);

    /** Signed provider records of {@code id}, newest per publisher. */
    CompletionStage<List<Provider>> providers(FileId id);

    /** The signed file record stored under the CID. */
    CompletionStage<Optional<FileRecord>> file(FileId id);

    /** Files whose name contains {@code word} (case-folded, from {@code keyword_idx::word}). */
    CompletionStage<List<FileRecord>> search(String word);

    /** The CID a BitTorrent info-hash (40 hex) maps to ({@code info_hash_idx::}). */
    CompletionStage<Optional<FileId>> byInfoHash(String btih);

    /** Verified records of any key, decoded for display (a power user's {@code dht get KEY}). */
    CompletionStage<List<Record>> get(String key);

    /**
     * A provider: publisher node id (64 hex), protocol → addresses, wallet, price per MB, chunks it has, and the
     * BitTorrent info-hash (40 lowercase hex) of the torrent it seeds the file as, or the empty string: with it a
     * provider's {@code bittorrent} address serves the file by CID (dual lookup).
     */
    record Provider(String nodeId, Map<String, List<String>> protocols, String walletAddress, String pricePerMb,
            int totalChunks, BitSet chunks, long publishedMillis, String infoHash) {
        /** Whether the provider has every chunk. */
        public boolean complete() {
            return chunks.cardinality() == totalChunks;
        }
    }

    /** File metadata as published in the DHT. */
    record FileRecord(FileId id, String name, long size, int chunkSize, int chunkCount, String merkleRoot,
            String mimeType, String publisher, long publishedMillis) {
    }

    /** A verified record of any kind: key, publisher, sequence (publish time), and the value as JSON text. */
    record Record(String key, String publisher, long seq, long ttlSeconds, String json) {
    }
}
