package io.chiral.protocol.bittorrent.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.BitSet;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import org.junit.jupiter.api.Test;

/** Block picking: rarest first, pieces in progress finished first, the in-memory bound, end-game duplicates. */
class PickerTest {
    static final int PIECE = 64 * 1024; // four blocks

    static Metainfo torrent(int pieces) throws Exception {
        Path dir = Files.createTempDirectory("picker");
        Path f = dir.resolve("f.bin");
        Files.write(f, new byte[pieces * PIECE - 100]);
        return Metainfo.parse(Metainfo.create(f, PIECE, List.of(), List.of(), null));
    }

    static BitSet pieces(int... idx) {
        BitSet b = new BitSet();
        for (int i : idx) {
            b.set(i);
        }
        return b;
    }

    @Test
    void theRarestPieceIsStartedFirstAndFinishedBeforeAnotherStarts() throws Exception {
        Metainfo m = torrent(10);
        Picker p = new Picker(m, new Random(1), 8);
        p.addPeer(pieces(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), false);
        p.addPeer(pieces(0, 1, 2, 3, 4, 5, 6, 8, 9), false);
        p.addPeer(pieces(0, 1, 2, 3, 4, 5, 6, 8, 9), false); // piece 7 is held by one peer only
        List<Picker.Block> first = p.pick(null, 4, Set.of());
        assertEquals(4, first.size());
        assertTrue(first.stream().allMatch(b -> b.piece() == 7), "rarest piece first: " + first);
        // a second peer asking gets another piece, never the blocks already in flight
        List<Picker.Block> second = p.pick(null, 4, Set.of());
        assertTrue(second.stream().noneMatch(b -> b.piece() == 7), second.toString());
        // an abandoned block is handed out again before anything new
        p.abandon(first.get(2));
        assertEquals(List.of(first.get(2)), p.pick(null, 1, Set.of()));
    }

    @Test
    void piecesInProgressAreBoundedAndEndGameDuplicatesTheLastBlocks() throws Exception {
        Metainfo m = torrent(3);
        Picker p = new Picker(m, new Random(2), 2);
        p.addPeer(null, true);
        List<Picker.Block> a = p.pick(null, 100, Set.of());
        assertEquals(8, a.size(), "two pieces of four blocks: the bound on pieces in memory");
        assertFalse(p.endgame());
        List<Picker.Block> more = p.pick(null, 100, Set.of());
        assertTrue(more.isEmpty(), "no third piece while two are in progress and nothing else is missing: " + more);

        // finish both pieces, then the last one is picked; once every block is requested, end-game duplicates
        Random r = new Random(3);
        boolean[] unexpected = new boolean[1];
        for (Picker.Block b : a) {
            byte[] data = new byte[b.length()];
            Picker.Partial done = p.receive(new PeerWire.Piece(b.piece(), b.begin(), data), "peer-a", unexpected);
            assertFalse(unexpected[0]);
            if (done != null) {
                p.verified(done.index);
            }
        }
        assertEquals(2, p.haveCount());
        List<Picker.Block> last = p.pick(null, 100, Set.of());
        assertEquals(4, last.size());
        assertTrue(p.endgame());
        Set<Picker.Block> mine = new HashSet<>(last);
        assertTrue(p.pick(null, 100, mine).isEmpty(), "no duplicates to the peer that already has them requested");
        List<Picker.Block> dup = p.pick(null, 100, Set.of());
        assertEquals(last, dup, "end-game: the same blocks from another peer");
        assertTrue(p.pick(null, 100, Set.of()).isEmpty(), "at most " + Picker.ENDGAME_DUPLICATES + " requests per block");

        // a block we never asked for is reported; a duplicate is ignored; a wrong length is refused
        int open = last.get(0).piece();
        int had = a.get(0).piece();
        assertNull(p.receive(new PeerWire.Piece(had, 0, new byte[16384]), "x", unexpected));
        assertFalse(unexpected[0], "a late copy of a block of a piece we have is harmless");
        assertNull(p.receive(new PeerWire.Piece(open, 1, new byte[16384]), "x", unexpected));
        assertTrue(unexpected[0], "misaligned block");
        assertNull(p.receive(new PeerWire.Piece(open, 0, new byte[100]), "x", unexpected));
        assertTrue(unexpected[0], "wrong length");
        Picker.Block b0 = last.get(0);
        byte[] data = new byte[b0.length()];
        r.nextBytes(data);
        assertNull(p.receive(new PeerWire.Piece(b0.piece(), b0.begin(), data), "peer-a", unexpected));
        assertNull(p.receive(new PeerWire.Piece(b0.piece(), b0.begin(), data), "peer-b", unexpected), "duplicate ignored");
        Picker.Partial partial = p.partials().iterator().next();
        assertEquals("peer-a", partial.contributors().get(0));
        for (Picker.Block b : last.subList(1, last.size())) {
            Picker.Partial done = p.receive(new PeerWire.Piece(b.piece(), b.begin(), new byte[b.length()]), "peer-b", unexpected);
            if (b == last.get(last.size() - 1)) {
                assertNotNull(done, "the last block completes the piece");
                assertEquals(m.pieceSize(open), done.data.length);
            }
        }
    }
}
