package io.chiral.dht.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import io.chiral.bencode.Bencode;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;

/**
 * Our mainline DHT against libtorrent 2.0.8 (Debian python3-libtorrent, driven by tests/interop/lt_dht.py), all on
 * 127.0.0.1: two of our nodes and two libtorrent nodes in one small DHT. BEP 5 in both directions (libtorrent finds
 * what we announce, we find what it announces) and BEP 44 immutable and mutable items in both directions.
 */
public class LibtorrentInteropTest {
    private static final HexFormat HEX = HexFormat.of();
    private static EventLoopGroup group;
    private static DhtNode ours1;
    private static DhtNode ours2;
    private static Lt lt1;
    private static Lt lt2;

    /** One libtorrent DHT node in its own python process, spoken to in JSON lines. */
    static final class Lt implements AutoCloseable {
        final Process process;
        final BufferedReader in;
        final Writer out;
        final int port;

        Lt() throws IOException {
            Path script = locate("tests/interop/lt_dht.py");
            process = new ProcessBuilder("/usr/bin/python3", script.toString(), "--port", "0")
                    .redirectError(ProcessBuilder.Redirect.appendTo(Path.of("target/lt_dht.log").toFile())).start();
            in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
            out = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
            String first = in.readLine();
            if (first == null) {
                fail("libtorrent driver did not start (is python3-libtorrent installed? apt-get install python3-libtorrent); "
                        + "see target/lt_dht.log");
            }
            JsonObject ready = JsonParser.parseString(first).getAsJsonObject();
            assertTrue(ready.get("ready").getAsBoolean(), first);
            port = ready.get("port").getAsInt();
        }

        synchronized JsonObject call(String json) throws IOException {
            out.write(json + "\n");
            out.flush();
            String line = in.readLine();
            assertNotNull(line, "libtorrent driver exited; see target/lt_dht.log");
            return JsonParser.parseString(line).getAsJsonObject();
        }

        JsonObject ok(String json) throws IOException {
            JsonObject r = call(json);
            assertTrue(r.get("ok").getAsBoolean(), "libtorrent: " + json + " -> " + r);
            return r;
        }

        InetSocketAddress address() {
            return new InetSocketAddress("127.0.0.1", port);
        }

        @Override
        public void close() throws Exception {
            try {
                call("{\"cmd\":\"quit\"}");
            } catch (IOException | AssertionError e) {
                // already gone
            }
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        }
    }

    static Path locate(String relative) {
        Path dir = Path.of("").toAbsolutePath();
        while (dir != null) {
            if (Files.exists(dir.resolve(relative))) {
                return dir.resolve(relative);
            }
            dir = dir.getParent();
        }
        throw new AssertionError(relative + " not found above " + Path.of("").toAbsolutePath());
    }

    @BeforeAll
    static void network() throws Exception {
        group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        SecureRandom sr = new SecureRandom();
        DhtNode.Settings s = DhtNode.Settings.mainline().withTimeout(Duration.ofSeconds(3));
        ours1 = new DhtNode(s, NodeId.random(sr), group, new InetSocketAddress("127.0.0.1", 0), sr);
        ours2 = new DhtNode(s, NodeId.random(sr), group, new InetSocketAddress("127.0.0.1", 0), sr);
        ours1.start().get(10, TimeUnit.SECONDS);
        ours2.start().get(10, TimeUnit.SECONDS);
        Files.createDirectories(Path.of("target"));
        lt1 = new Lt();
        lt2 = new Lt();
        for (Lt lt : List.of(lt1, lt2)) {
            lt.ok(addNode(ours1.address()));
            lt.ok(addNode(ours2.address()));
        }
        lt2.ok(addNode(lt1.address()));
        ours1.bootstrap(List.of(lt1.address(), lt2.address(), ours2.address())).get(30, TimeUnit.SECONDS);
        ours2.bootstrap(List.of(lt1.address(), lt2.address(), ours1.address())).get(30, TimeUnit.SECONDS);
        assertTrue(ours1.snapshot().get().tableSize() >= 3, "our node knows the libtorrent nodes");
    }

    private static String addNode(InetSocketAddress a) {
        return "{\"cmd\":\"add_node\",\"host\":\"127.0.0.1\",\"port\":" + a.getPort() + ",\"timeout\":30}";
    }

    @AfterAll
    static void tearDown() throws Exception {
        for (AutoCloseable c : new AutoCloseable[] {lt1, lt2, ours1, ours2}) {
            if (c != null) {
                c.close();
            }
        }
        if (group != null) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(10, TimeUnit.SECONDS);
        }
    }

    private static byte[] randomHash() {
        byte[] b = new byte[20];
        new SecureRandom().nextBytes(b);
        return b;
    }

    @Test
    void weFindPeersLibtorrentAnnounced() throws Exception {
        byte[] ih = randomHash();
        JsonObject r = lt1.ok("{\"cmd\":\"announce\",\"info_hash\":\"" + HEX.formatHex(ih) + "\",\"port\":6881}");
        assertTrue(r.get("num_success").getAsInt() >= 1, r.toString());
        Lookup.Result found = ours1.lookup(NodeId.of(ih), Lookup.Kind.GET_PEERS, null).get(30, TimeUnit.SECONDS);
        assertTrue(found.peers().contains(new InetSocketAddress("127.0.0.1", 6881)), "peers: " + found.peers());
    }

    @Test
    void libtorrentFindsPeersWeAnnounced() throws Exception {
        byte[] ih = randomHash();
        int stored = ours1.announce(NodeId.of(ih), 7001).get(30, TimeUnit.SECONDS);
        assertTrue(stored >= 2, "stored at " + stored + " nodes");
        JsonObject r = lt2.ok("{\"cmd\":\"get_peers\",\"info_hash\":\"" + HEX.formatHex(ih) + "\",\"timeout\":30}");
        List<String> peers = new ArrayList<>();
        for (JsonElement e : r.getAsJsonArray("peers")) {
            peers.add(e.getAsString());
        }
        assertTrue(peers.contains("127.0.0.1:7001"), "libtorrent found " + peers);
    }

    @Test
    void immutableItemsBothWays() throws Exception {
        JsonObject put = lt1.ok("{\"cmd\":\"put_immutable\",\"value\":\"stored by libtorrent " + System.nanoTime() + "\"}");
        String target = put.get("target").getAsString();
        Lookup.Result got = ours2.lookup(NodeId.parseHex(target), Lookup.Kind.GET, null).get(30, TimeUnit.SECONDS);
        assertNotNull(got.item(), "we did not find libtorrent's immutable item");
        assertEquals(target, Bep44.immutableTarget(got.item().value()).hex());

        byte[] value = Bencode.encode("stored by chiral " + System.nanoTime());
        assertTrue(ours1.putImmutable(value).get(30, TimeUnit.SECONDS) >= 2);
        JsonObject r = lt2.ok("{\"cmd\":\"get_immutable\",\"target\":\"" + Bep44.immutableTarget(value).hex() + "\"}");
        assertTrue(r.get("found").getAsBoolean(), r.toString());
        assertEquals(HEX.formatHex(value), r.get("bencoded_hex").getAsString());
    }

    @Test
    void mutableItemsBothWays() throws Exception {
        // libtorrent puts, we read and verify the signature
        JsonObject kp = lt1.ok("{\"cmd\":\"keypair\"}");
        String pk = kp.get("public_key").getAsString();
        lt1.ok("{\"cmd\":\"put_mutable\",\"public_key\":\"" + pk + "\",\"secret_key\":\"" + kp.get("secret_key").getAsString()
                + "\",\"salt\":\"chan\",\"value\":\"hello from libtorrent\"}");
        Lookup.Result got = ours1.lookup(Bep44.mutableTarget(HEX.parseHex(pk), "chan".getBytes(StandardCharsets.US_ASCII)),
                Lookup.Kind.GET, "chan".getBytes(StandardCharsets.US_ASCII)).get(30, TimeUnit.SECONDS);
        assertNotNull(got.item(), "we did not find libtorrent's mutable item");
        assertEquals("21:hello from libtorrent", new String(got.item().value(), StandardCharsets.US_ASCII));
        assertTrue(got.item().seq() >= 1);

        // we put (seq 1, then 2), libtorrent reads the newest and its signature checks out there
        byte[] seed = new byte[32];
        new SecureRandom().nextBytes(seed);
        byte[] ourPk = Ed25519Keys.publicKey(seed);
        byte[] salt = "chiral".getBytes(StandardCharsets.US_ASCII);
        assertTrue(ours2.putMutable(seed, salt, Bencode.encode("first"), 1).get(30, TimeUnit.SECONDS) >= 2);
        assertTrue(ours2.putMutable(seed, salt, Bencode.encode("second"), 2).get(30, TimeUnit.SECONDS) >= 2);
        JsonObject r = lt2.ok("{\"cmd\":\"get_mutable\",\"public_key\":\"" + HEX.formatHex(ourPk) + "\",\"salt\":\"chiral\"}");
        assertTrue(r.get("found").getAsBoolean(), r.toString());
        assertEquals(2, r.get("seq").getAsLong(), r.toString());
        assertEquals("second", r.get("value").getAsString(), r.toString());
    }

}
