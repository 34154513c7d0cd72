package io.chiral.protocol.bittorrent.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Random;

import org.bouncycastle.crypto.engines.RC4Engine;
import org.junit.jupiter.api.Test;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;

/**
 * The MSE responder against the initiator's side of the exchange written out here step by step (libtorrent is the
 * initiator of the end-to-end tests), and against hostile bytes.
 */
class MseResponderTest {
    private static final byte[] IH = new byte[20];
    static {
        Arrays.fill(IH, (byte) 7);
    }

    private static EmbeddedChannel channel() {
        return new EmbeddedChannel(new MseResponder(r -> MessageDigest.isEqual(r, MseResponder.req2(IH)) ? IH : null,
                new SecureRandom()));
    }

    private static byte[] handshake() {
        byte[] h = PeerWire.encodeHandshake(new PeerWire.Handshake(new byte[8], IH, new byte[20]));
        return h;
    }

    private static byte[] drain(EmbeddedChannel ch, boolean outbound) {
        ByteBuf all = Unpooled.buffer();
        for (Object m; (m = outbound ? ch.readOutbound() : ch.readInbound()) != null; ) {
            ByteBuf b = (ByteBuf) m;
            all.writeBytes(b);
            b.release();
        }
        byte[] out = new byte[all.readableBytes()];
        all.readBytes(out);
        return out;
    }

    @Test
    void aPlaintextHandshakePassesThroughAndTheHandlerLeaves() {
        EmbeddedChannel ch = channel();
        byte[] h = handshake();
        ch.writeInbound(Unpooled.wrappedBuffer(Arrays.copyOf(h, 10)));
        ch.writeInbound(Unpooled.wrappedBuffer(Arrays.copyOfRange(h, 10, h.length)));
        assertArrayEquals(h, drain(ch, false));
        assertNull(ch.pipeline().get(MseResponder.class));
        assertEquals(0, drain(ch, true).length, "nothing is answered to a plaintext handshake");
    }

    @Test
    void anEncryptedHandshakeWithRc4BothWays() {
        exchange(MseResponder.CRYPTO_RC4, MseResponder.CRYPTO_RC4);
    }

    @Test
    void anEncryptedHandshakeSelectsPlaintextWhenOffered() {
        exchange(MseResponder.CRYPTO_RC4 | MseResponder.CRYPTO_PLAINTEXT, MseResponder.CRYPTO_PLAINTEXT);
    }

    /** Steps 1 to 5 of the exchange as an initiator does them, with a pad of 100 bytes and the handshake as IA. */
    private static void exchange(int provide, int expectSelect) {
        EmbeddedChannel ch = channel();
        SecureRandom r = new SecureRandom();
        BigInteger xa = new BigInteger(160, r);
        byte[] ya = MseResponder.unsigned(MseResponder.G.modPow(xa, MseResponder.P));
        ch.writeInbound(Unpooled.wrappedBuffer(ya, new byte[100]));
        byte[] answer = drain(ch, true);
        assertTrue(answer.length >= 96 && answer.length <= 96 + 512, "Yb and PadB: " + answer.length);
        byte[] s = MseResponder.unsigned(new BigInteger(1, Arrays.copyOf(answer, 96)).modPow(xa, MseResponder.P));
        byte[] req3 = MseResponder.sha1(ascii("req3"), s);
        byte[] x = MseResponder.req2(IH);
        for (int i = 0; i < 20; i++) {
            x[i] ^= req3[i];
        }
        RC4Engine enc = MseResponder.rc4(MseResponder.sha1(ascii("keyA"), s, IH));
        RC4Engine dec = MseResponder.rc4(MseResponder.sha1(ascii("keyB"), s, IH));
        byte[] ia = handshake();
        ByteBuf hdr = Unpooled.buffer().writeLong(0).writeInt(provide).writeShort(3).writeBytes(new byte[3])
                .writeShort(ia.length).writeBytes(ia);
        byte[] plain = new byte[hdr.readableBytes()];
        hdr.readBytes(plain);
        byte[] cipher = new byte[plain.length];
        enc.processBytes(plain, 0, plain.length, cipher, 0);
        // sent in two parts, split inside the encrypted header
        ch.writeInbound(Unpooled.wrappedBuffer(MseResponder.sha1(ascii("req1"), s), x, Arrays.copyOf(cipher, 5)));
        ch.writeInbound(Unpooled.wrappedBuffer(Arrays.copyOfRange(cipher, 5, cipher.length)));

        byte[] step4 = drain(ch, true);
        assertEquals(14, step4.length);
        dec.processBytes(step4, 0, 14, step4, 0);
        ByteBuf d = Unpooled.wrappedBuffer(step4);
        assertEquals(0L, d.readLong(), "verification constant");
        assertEquals(expectSelect, d.readInt(), "crypto_select");
        assertEquals(0, d.readUnsignedShort());
        assertArrayEquals(ia, drain(ch, false), "the initial payload comes out deciphered");

        byte[] more = "after the handshake".getBytes(StandardCharsets.US_ASCII);
        byte[] wire = more.clone();
        if (expectSelect == MseResponder.CRYPTO_RC4) {
            enc.processBytes(more, 0, more.length, wire, 0);
        }
        ch.writeInbound(Unpooled.wrappedBuffer(wire));
        assertArrayEquals(more, drain(ch, false));
        ch.writeOutbound(Unpooled.wrappedBuffer(more.clone()));
        byte[] sent = drain(ch, true);
        if (expectSelect == MseResponder.CRYPTO_RC4) {
            dec.processBytes(sent, 0, sent.length, sent, 0);
            assertTrue(ch.pipeline().get(MseResponder.class) != null);
        } else {
            assertNull(ch.pipeline().get(MseResponder.class));
        }
        assertArrayEquals(more, sent);
        assertTrue(ch.isActive());
    }

    @Test
    void anUnknownTorrentAGarbageStreamOrABadConstantCloseTheConnection() {
        Random rnd = new Random(5);
        for (int i = 0; i < 300; i++) {
            EmbeddedChannel ch = channel();
            byte[] junk = new byte[rnd.nextInt(2000)];
            rnd.nextBytes(junk);
            junk[0] = (byte) (junk[0] == 19 ? 20 : junk[0]);
            try {
                for (int at = 0; at < junk.length && ch.isOpen(); ) {
                    int n = Math.min(junk.length - at, 1 + rnd.nextInt(300));
                    ch.writeInbound(Unpooled.wrappedBuffer(junk, at, n));
                    at += n;
                }
                ch.checkException();
            } catch (Exception e) {
                assertTrue(e instanceof TorrentException, e.toString());
            }
            drain(ch, true);
            // nothing reaches the peer-wire codec from a stream that was never a valid handshake
            assertEquals(0, drain(ch, false).length);
            if (junk.length >= 96 + 512 + 20) {
                assertFalse(ch.isOpen(), "closed after " + junk.length + " bytes without a synchronisation hash");
            }
            ch.finishAndReleaseAll();
        }
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }
}
