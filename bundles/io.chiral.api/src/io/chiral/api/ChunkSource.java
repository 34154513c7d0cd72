package io.chiral.api;

import java.nio.ByteBuffer;
import java.util.BitSet;
import java.util.concurrent.CompletionStage;

/**
 * One peer, reached through one protocol, that can deliver chunks of one file. The transfer engine in the core
 * asks sources for chunks, verifies every byte against the metadata and decides which source gets which chunk;
 * a source only moves bytes. A source may be asked for several chunks at once (pipelining), up to
 * {@link #maxOutstanding()}.
 */
public interface ChunkSource extends AutoCloseable {
    PeerInfo peer();

    /**
     * Fetches chunk {@code index}. The stage completes with a buffer positioned at 0 holding exactly the chunk's
     * bytes as the peer sent them (unverified), or exceptionally when the peer fails, sends too much or too little,
     * or the source is closed.
     */
    CompletionStage<ByteBuffer> fetchChunk(int index);

    /** Chunks this source can serve, or {@code null} when it has all of them. */
    default BitSet available() {
        return null;
    }

    /** How many requests this source accepts at once. */
    default int maxOutstanding() {
        return 4;
    }

    /** Releases connections; outstanding fetches complete exceptionally. */
    @Override
    void close();
}
