package io.chiral.protocol.bittorrent.internal;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Which blocks to ask which peer for: pieces in progress are finished first, then a new piece is started, the
 * rarest among the peer's pieces (ties broken at random); in end-game, when every missing block is already
 * requested, blocks are requested a second time from other peers. Pieces in progress are bounded by
 * {@code maxPartial} so a swarm of slow peers cannot make us hold the whole torrent in memory. Not thread-safe:
 * the torrent calls it under its lock.
 */
final class Picker {
    /** Most peers a block is requested from at once in end-game. */
    static final int ENDGAME_DUPLICATES = 2;

    /** A block of a piece. */
    record Block(int piece, int begin, int length) {
    }

    /** A piece being assembled in memory. */
    static final class Partial {
        final int index;
        final byte[] data;
        final BitSet received = new BitSet();
        final byte[] requested;
        final Object[] from;
        int receivedCount;
        /** Blocks neither received nor requested from anyone: when 0, step 1 of picking skips the piece at once. */
        int unrequested;

        Partial(int index, int size) {
            this.index = index;
            this.data = new byte[size];
            int blocks = (size + PeerWire.BLOCK - 1) / PeerWire.BLOCK;
            this.requested = new byte[blocks];
            this.from = new Object[blocks];
            this.unrequested = blocks;
        }

        int blocks() {
            return requested.length;
        }

        boolean complete() {
            return receivedCount == requested.length;
        }

        Block block(int b) {
            int begin = b * PeerWire.BLOCK;
            return new Block(index, begin, Math.min(PeerWire.BLOCK, data.length - begin));
        }

        /** The peers that delivered this piece's blocks, one entry per block. */
        List<Object> contributors() {
            return java.util.Arrays.asList(from.clone());
        }
    }

    private final Metainfo meta;
    private final BitSet have = new BitSet();
    private final int[] availability;
    private final Map<Integer, Partial> partial = new LinkedHashMap<>();
    private final Random random;
    private int maxPartial;
    /** Whether the last {@link #receive} kept the block (false for duplicates and unexpected blocks). */
    boolean stored;
    private int seeds;

    Picker(Metainfo meta, Random random, int maxPartial) {
        this.meta = meta;
        this.availability = new int[meta.pieceCount()];
        this.random = random;
        this.maxPartial = maxPartial;
    }

    int pieceCount() {
        return availability.length;
    }

    BitSet have() {
        return (BitSet) have.clone();
    }

    boolean has(int piece) {
        return have.get(piece);
    }

    int haveCount() {
        return have.cardinality();
    }

    boolean complete() {
        return have.cardinality() == availability.length;
    }

    void maxPartial(int n) {
        maxPartial = Math.max(1, n);
    }

    Collection<Partial> partials() {
        return partial.values();
    }

    // ---- availability ----

    void addPeer(BitSet pieces, boolean seed) {
        if (seed) {
            seeds++;
            return;
        }
        for (int i = pieces.nextSetBit(0); i >= 0 && i < availability.length; i = pieces.nextSetBit(i + 1)) {
            availability[i]++;
        }
    }

    void removePeer(BitSet pieces, boolean seed) {
        if (seed) {
            seeds--;
            return;
        }
        for (int i = pieces.nextSetBit(0); i >= 0 && i < availability.length; i = pieces.nextSetBit(i + 1)) {
            availability[i]--;
        }
    }

    void peerHas(int piece) {
        availability[piece]++;
    }

    /** How many peers have the piece. */
    int availability(int piece) {
        return availability[piece] + seeds;
    }

    // ---- picking ----

    /**
     * Up to {@code n} blocks for a peer having {@code pieces} ({@code null}: everything) that are not among
     * {@code mine} (what is already requested from it).
     */
    List<Block> pick(BitSet pieces, int n, java.util.Set<Block> mine) {
        List<Block> out = new ArrayList<>(n);
        if (n <= 0) {
            return out;
        }
        // 1. finish what is in progress
        for (Partial p : partial.values()) {
            if (p.unrequested == 0 || (pieces != null && !pieces.get(p.index))) {
                continue;
            }
            for (int b = 0; b < p.blocks() && out.size() < n; b++) {
                if (!p.received.get(b) && p.requested[b] == 0) {
                    p.requested[b]++;
                    p.unrequested--;
                    out.add(p.block(b));
                }
            }
            if (out.size() >= n) {
                return out;
            }
        }
        // 2. start rarest pieces
        while (out.size() < n && partial.size() < maxPartial) {
            int piece = rarest(pieces);
            if (piece < 0) {
                break;
            }
            Partial p = new Partial(piece, meta.pieceSize(piece));
            partial.put(piece, p);
            for (int b = 0; b < p.blocks() && out.size() < n; b++) {
                p.requested[b]++;
                p.unrequested--;
                out.add(p.block(b));
            }
        }
        if (!out.isEmpty() || !endgame()) {
            return out;
        }
        // 3. end-game: ask for blocks already requested elsewhere
        for (Partial p : partial.values()) {
            if (pieces != null && !pieces.get(p.index)) {
                continue;
            }
            for (int b = 0; b < p.blocks() && out.size() < n; b++) {
                if (!p.received.get(b) && p.requested[b] < ENDGAME_DUPLICATES) {
                    Block bl = p.block(b);
                    if (!mine.contains(bl)) {
                        p.requested[b]++;
                        out.add(bl);
                    }
                }
            }
        }
        return out;
    }

    /** Whether every missing piece is in progress (so only duplicate requests are left). */
    boolean endgame() {
        return have.cardinality() + partial.size() >= availability.length;
    }

    private int rarest(BitSet pieces) {
        int best = -1;
        int bestAvail = Integer.MAX_VALUE;
        int ties = 0;
        int n = availability.length;
        int start = random.nextInt(Math.max(1, n));
        for (int k = 0; k < n; k++) {
            int i = start + k < n ? start + k : start + k - n;
            if (have.get(i) || partial.containsKey(i) || (pieces != null && !pieces.get(i))) {
                continue;
            }
            int a = availability[i];
            if (a < bestAvail) {
                best = i;
                bestAvail = a;
                ties = 1;
            } else if (a == bestAvail && random.nextInt(++ties) == 0) {
                best = i;
            }
        }
        return best;
    }

    /** A request that will not be answered (peer choked us, rejected, disconnected or timed out). */
    void abandon(Block b) {
        Partial p = partial.get(b.piece());
        if (p != null) {
            int i = b.begin() / PeerWire.BLOCK;
            if (p.requested[i] > 0) {
                p.requested[i]--;
                if (p.requested[i] == 0 && !p.received.get(i)) {
                    p.unrequested++;
                }
            }
        }
    }

    /**
     * Stores a block; returns the piece when it became complete (to verify), {@code null} otherwise. A block we do
     * not expect (not in progress, misaligned, wrong length, already received) is ignored and reported through
     * {@code unexpected}.
     */
    Partial receive(PeerWire.Piece pc, Object from, boolean[] unexpected) {
        stored = false;
        int piece = pc.index();
        int begin = pc.begin();
        int length = pc.length();
        unexpected[0] = false;
        Partial p = partial.get(piece);
        if (p == null) {
            unexpected[0] = !have.get(piece); // a late end-game copy of a piece we have is fine; anything else is not
            return null;
        }
        if (begin % PeerWire.BLOCK != 0 || begin >= p.data.length) {
            unexpected[0] = true;
            return null;
        }
        int b = begin / PeerWire.BLOCK;
        if (length != p.block(b).length()) {
            unexpected[0] = true;
            return null;
        }
        if (p.received.get(b)) {
            return null; // end-game duplicate
        }
        pc.copyTo(p.data, begin);
        stored = true;
        if (p.requested[b] == 0) {
            p.unrequested--; // arrived without being asked of anyone (a Chiral source's neighbour block, a late copy)
        }
        p.received.set(b);
        p.from[b] = from;
        p.receivedCount++;
        return p.complete() ? p : null;
    }

    /** The piece passed its hash check. */
    void verified(int piece) {
        partial.remove(piece);
        have.set(piece);
    }

    /** The piece failed its hash check: start it over. */
    void failed(int piece) {
        partial.remove(piece);
    }

    /** Marks a piece found on disk at start. */
    void haveFromDisk(int piece) {
        have.set(piece);
    }

    /** Drops every piece in progress (pause, or all peers gone). */
    void clearPartials() {
        partial.clear();
    }
}
