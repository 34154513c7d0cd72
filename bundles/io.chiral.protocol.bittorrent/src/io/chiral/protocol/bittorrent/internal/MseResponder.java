package io.chiral.protocol.bittorrent.internal;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.function.Function;

import org.bouncycastle.crypto.engines.RC4Engine;
import org.bouncycastle.crypto.params.KeyParameter;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.util.ReferenceCountUtil;

/**
 * The answering side of Message Stream Encryption (MSE, also called protocol encryption), which libtorrent, qBittorrent
 * and most public clients try first when they connect: a Diffie-Hellman exchange over a 768-bit prime, then RC4 keys
 * derived from the shared secret and the torrent's info-hash. Sits in an inbound channel's pipeline before the
 * peer-wire codec:
 * <ul>
 * <li>a plaintext BitTorrent handshake ({@code 0x13 "BitTorrent protocol"}) passes through and the handler leaves;</li>
 * <li>otherwise the bytes are an MSE handshake; the info-hash must be one of ours ({@code infoHashes}). When the peer
 * offers plaintext we select it (the handshake is then obfuscated, the stream is not), otherwise RC4: the handler
 * stays and enciphers both directions.</li>
 * </ul>
 * Bounded like the rest of the wire: at most 96 + 512 + 20 bytes are searched for the synchronisation hash, pads are at
 * most 512 bytes and the initial payload at most {@value #MAX_IA} bytes; anything else throws a
 * {@link TorrentException}, which closes the connection. Not sharable: one instance per channel.
 */
final class MseResponder extends ChannelDuplexHandler {
    static final BigInteger P = new BigInteger("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
            + "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A6"
            + "3A36210000000000090563", 16);
    static final BigInteger G = BigInteger.TWO;
    static final int KEY_BYTES = 96;
    static final int MAX_PAD = 512;
    static final int MAX_IA = 16 * 1024;
    static final int CRYPTO_PLAINTEXT = 1;
    static final int CRYPTO_RC4 = 2;
    private static final byte[] PLAIN_PREFIX = ("\u0013BitTorrent protocol").getBytes(StandardCharsets.ISO_8859_1);

    private enum Stage { FIRST, PUBLIC_KEY, SYNC, HEADER, PAD_C, IA, PLAINTEXT, RC4, FAILED }

    private final Function<byte[], byte[]> infoHashByReq2;
    private final SecureRandom random;
    private Stage stage = Stage.FIRST;
    private ByteBuf buf;
    private byte[] secret;
    private byte[] req1;
    private RC4Engine in;
    private RC4Engine out;
    private int provide;
    private int padC;
    private int lengthIa;
    private byte[] scratch;

    /**
     * @param infoHashByReq2 the info-hash of our torrent whose {@code SHA1("req2", info-hash)} is the argument, or null
     */
    MseResponder(Function<byte[], byte[]> infoHashByReq2, SecureRandom random) {
        this.infoHashByReq2 = infoHashByReq2;
        this.random = random;
    }

    /** {@code SHA1("req2", infoHash)}: what an initiator's handshake names the torrent by. */
    static byte[] req2(byte[] infoHash) {
        return sha1(bytes("req2"), infoHash);
    }

    /** An encrypted handshake must be through within this many seconds of the connection (the reader-idle limit of
     * the peer wire is minutes). */
    static final int HANDSHAKE_SECONDS = 20;
    private io.netty.util.concurrent.ScheduledFuture<?> deadline;

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        deadline = ctx.executor().schedule(() -> {
            if (stage != Stage.PLAINTEXT && stage != Stage.RC4) {
                ctx.close();
            }
        }, HANDSHAKE_SECONDS, java.util.concurrent.TimeUnit.SECONDS);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
        if (!(msg instanceof ByteBuf b)) {
            ctx.fireChannelRead(msg);
            return;
        }
        if (stage == Stage.FAILED) {
            ReferenceCountUtil.release(msg);
            return;
        }
        if (stage == Stage.RC4 && buf == null) {
            crypt(in, b, b.readerIndex(), b.readableBytes());
            ctx.fireChannelRead(b);
            return;
        }
        if (buf == null) {
            buf = ctx.alloc().buffer(KEY_BYTES + MAX_PAD + 64);
        }
        try {
            buf.writeBytes(b);
        } finally {
            b.release();
        }
        try {
            if (buf.readableBytes() > KEY_BYTES + 2 * MAX_PAD + 64 + MAX_IA) {
                throw new TorrentException("MSE handshake longer than its bounds");
            }
            advance(ctx);
        } catch (TorrentException e) {
            stage = Stage.FAILED;
            buf.release();
            buf = null;
            ctx.fireExceptionCaught(e);
            ctx.close();
        }
    }

    private void advance(ChannelHandlerContext ctx) throws TorrentException {
        while (true) {
            switch (stage) {
                case FIRST -> {
                    if (buf.readableBytes() < PLAIN_PREFIX.length) {
                        return;
                    }
                    boolean plain = true;
                    for (int i = 0; i < PLAIN_PREFIX.length && plain; i++) {
                        plain = buf.getByte(buf.readerIndex() + i) == PLAIN_PREFIX[i];
                    }
                    if (plain) {
                        leave(ctx);
                        return;
                    }
                    stage = Stage.PUBLIC_KEY;
                }
                case PUBLIC_KEY -> {
                    if (buf.readableBytes() < KEY_BYTES) {
                        return;
                    }
                    byte[] ya = new byte[KEY_BYTES];
                    buf.readBytes(ya);
                    answerPublicKey(ctx, new BigInteger(1, ya));
                    stage = Stage.SYNC;
                }
                case SYNC -> {
                    // PadA (0-512 bytes) then HASH('req1', S); then HASH('req2', SKEY) xor HASH('req3', S)
                    int at = indexOf(buf, req1);
                    if (at < 0) {
                        if (buf.readableBytes() >= MAX_PAD + req1.length) {
                            throw new TorrentException("no MSE synchronisation hash within " + MAX_PAD + " bytes of pad");
                        }
                        return;
                    }
                    if (buf.readableBytes() < at + 40) {
                        return;
                    }
                    buf.skipBytes(at + 20);
                    byte[] x = new byte[20];
                    buf.readBytes(x);
                    byte[] req3 = sha1(bytes("req3"), secret);
                    for (int i = 0; i < 20; i++) {
                        x[i] ^= req3[i];
                    }
                    byte[] skey = infoHashByReq2.apply(x);
                    if (skey == null) {
                        throw new TorrentException("MSE handshake for a torrent we do not have");
                    }
                    in = rc4(sha1(bytes("keyA"), secret, skey));
                    out = rc4(sha1(bytes("keyB"), secret, skey));
                    stage = Stage.HEADER;
                }
                case HEADER -> {
                    // ENCRYPT(VC, crypto_provide, len(PadC)): 8 + 4 + 2 bytes
                    if (buf.readableBytes() < 14) {
                        return;
                    }
                    crypt(in, buf, buf.readerIndex(), 14);
                    if (buf.readLong() != 0) {
                        throw new TorrentException("MSE verification constant is not zero");
                    }
                    provide = buf.readInt();
                    padC = buf.readUnsignedShort();
                    if (padC > MAX_PAD) {
                        throw new TorrentException("MSE pad of " + padC + " bytes (at most " + MAX_PAD + ")");
                    }
                    stage = Stage.PAD_C;
                }
                case PAD_C -> {
                    if (buf.readableBytes() < padC + 2) {
                        return;
                    }
                    crypt(in, buf, buf.readerIndex(), padC + 2);
                    buf.skipBytes(padC);
                    lengthIa = buf.readUnsignedShort();
                    if (lengthIa > MAX_IA) {
                        throw new TorrentException("MSE initial payload of " + lengthIa + " bytes (at most " + MAX_IA + ")");
                    }
                    stage = Stage.IA;
                }
                case IA -> {
                    if (buf.readableBytes() < lengthIa) {
                        return;
                    }
                    int select;
                    if ((provide & CRYPTO_PLAINTEXT) != 0) {
                        select = CRYPTO_PLAINTEXT; // the handshake was obfuscated; the payload needs no cipher
                    } else if ((provide & CRYPTO_RC4) != 0) {
                        select = CRYPTO_RC4;
                    } else {
                        throw new TorrentException("MSE peer offers no method we know (crypto_provide " + provide + ")");
                    }
                    crypt(in, buf, buf.readerIndex(), lengthIa); // the initial payload is enciphered either way
                    // ENCRYPT(VC, crypto_select, len(PadD) = 0)
                    ByteBuf answer = ctx.alloc().buffer(14).writeLong(0).writeInt(select).writeShort(0);
                    crypt(out, answer, 0, 14);
                    ctx.writeAndFlush(answer, ctx.voidPromise());
                    if (select == CRYPTO_PLAINTEXT) {
                        leave(ctx); // the initial payload, deciphered, and whatever followed it in plaintext

                        return;
                    }
                    crypt(in, buf, buf.readerIndex() + lengthIa, buf.readableBytes() - lengthIa);
                    stage = Stage.RC4;
                    deadline.cancel(false);
                    ByteBuf rest = buf;
                    buf = null;
                    if (rest.isReadable()) {
                        ctx.fireChannelRead(rest);
                    } else {
                        rest.release();
                    }
                    return;
                }
                default -> throw new IllegalStateException(stage.name());
            }
        }
    }

    /** Sends Yb and PadB; computes S and the hash the initiator synchronises on. */
    private void answerPublicKey(ChannelHandlerContext ctx, BigInteger ya) throws TorrentException {
        if (ya.compareTo(BigInteger.ONE) <= 0 || ya.compareTo(P.subtract(BigInteger.ONE)) >= 0) {
            throw new TorrentException("MSE public key out of range");
        }
        BigInteger xb = new BigInteger(160, random);
        byte[] yb = unsigned(G.modPow(xb, P));
        secret = unsigned(ya.modPow(xb, P));
        req1 = sha1(bytes("req1"), secret);
        int pad = random.nextInt(MAX_PAD + 1);
        byte[] padB = new byte[pad];
        random.nextBytes(padB);
        ctx.writeAndFlush(ctx.alloc().buffer(KEY_BYTES + pad).writeBytes(yb).writeBytes(padB), ctx.voidPromise());
    }

    /** Hands what is buffered to the next handler in plaintext and takes this handler out of the pipeline. */
    private void leave(ChannelHandlerContext ctx) {
        stage = Stage.PLAINTEXT;
        ByteBuf rest = buf;
        buf = null;
        ctx.pipeline().remove(this);
        if (rest.isReadable()) {
            ctx.fireChannelRead(rest);
        } else {
            rest.release();
        }
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) throws Exception {
        if (stage != Stage.RC4 || !(msg instanceof ByteBuf b)) {
            ctx.write(msg, promise);
            return;
        }
        // a copy: the buffer written may be shared (a cached message, a slice of a piece)
        ByteBuf enc = ctx.alloc().directBuffer(b.readableBytes());
        try {
            enc.writeBytes(b, b.readerIndex(), b.readableBytes());
        } finally {
            ReferenceCountUtil.release(b);
        }
        crypt(out, enc, 0, enc.readableBytes());
        ctx.write(enc, promise);
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        if (deadline != null) {
            deadline.cancel(false);
        }
        if (buf != null) {
            buf.release();
            buf = null;
        }
    }

    private void crypt(RC4Engine engine, ByteBuf b, int from, int length) {
        if (b.hasArray()) {
            byte[] a = b.array();
            int off = b.arrayOffset() + from;
            engine.processBytes(a, off, length, a, off);
            return;
        }
        if (scratch == null) {
            scratch = new byte[16 * 1024];
        }
        for (int done = 0; done < length; ) {
            int n = Math.min(scratch.length, length - done);
            b.getBytes(from + done, scratch, 0, n);
            engine.processBytes(scratch, 0, n, scratch, 0);
            b.setBytes(from + done, scratch, 0, n);
            done += n;
        }
    }

    /** RC4 keyed with {@code key}, the first 1024 bytes of its stream discarded as the specification says. */
    static RC4Engine rc4(byte[] key) {
        RC4Engine e = new RC4Engine();
        e.init(true, new KeyParameter(key));
        byte[] discard = new byte[1024];
        e.processBytes(discard, 0, discard.length, discard, 0);
        return e;
    }

    private static int indexOf(ByteBuf b, byte[] what) {
        int start = b.readerIndex();
        int last = b.writerIndex() - what.length;
        outer:
        for (int i = start; i <= last; i++) {
            for (int j = 0; j < what.length; j++) {
                if (b.getByte(i + j) != what[j]) {
                    continue outer;
                }
            }
            return i - start;
        }
        return -1;
    }

    /** The 96-byte big-endian form of a value below {@link #P}. */
    static byte[] unsigned(BigInteger v) {
        byte[] raw = v.toByteArray();
        byte[] outBytes = new byte[KEY_BYTES];
        int n = Math.min(raw.length, KEY_BYTES);
        System.arraycopy(raw, raw.length - n, outBytes, KEY_BYTES - n, n);
        return outBytes;
    }

    static byte[] sha1(byte[]... parts) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-1");
            for (byte[] p : parts) {
                md.update(p);
            }
            return md.digest();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }
}
