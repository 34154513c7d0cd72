package io.chiral.protocol.bittorrent.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

public class TorrentExceptionTest {
    @Test
    void carriesItsMessage() {
        assertEquals("bad", new TorrentException("bad").getMessage());
    }
}
