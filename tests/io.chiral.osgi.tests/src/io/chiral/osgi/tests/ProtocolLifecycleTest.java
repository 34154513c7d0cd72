package io.chiral.osgi.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.List;
import java.util.Random;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.FrameworkUtil;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.osgi.service.event.Event;
import org.osgi.service.event.EventConstants;
import org.osgi.service.event.EventHandler;
import org.osgi.util.tracker.ServiceTracker;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import io.chiral.api.ChiralEvents;
import io.chiral.api.ContentProtocol;
import io.chiral.api.ContentStore;
import io.chiral.api.FileMetadata;
import io.chiral.api.ProtocolManager;

/**
 * Inside one Equinox framework: the HTTP transport bundle arrives and leaves while the node runs, the
 * ProtocolManager follows it, and its server answers real HTTP requests and lets go of its port when stopped.
 */
class ProtocolLifecycleTest {
    static BundleContext ctx;
    static Path dataDir;
    static ServiceTracker<ProtocolManager, ProtocolManager> managers;
    static ServiceTracker<ContentStore, ContentStore> stores;
    static final BlockingQueue<Event> EVENTS = new LinkedBlockingQueue<>();
    static ServiceRegistration<EventHandler> handler;
    static final HttpClient HTTP = HttpClient.newHttpClient();

    @BeforeAll
    static void configure() throws Exception {
        Bundle self = FrameworkUtil.getBundle(ProtocolLifecycleTest.class);
        assertNotNull(self, "must run inside OSGi");
        ctx = self.getBundleContext();
        dataDir = Files.createTempDirectory("chiral-osgi");
        ServiceTracker<ConfigurationAdmin, ConfigurationAdmin> cmt = new ServiceTracker<>(ctx, ConfigurationAdmin.class, null);
        cmt.open();
        ConfigurationAdmin cm = cmt.waitForService(10_000);
        assertNotNull(cm, "ConfigAdmin not running");
        configure(cm, "io.chiral.core.store", "dataDir", dataDir.toString());
        configure(cm, "io.chiral.protocol.http", "port", 0, "bind", "127.0.0.1", "portFile",
                dataDir.resolve("http.port").toString());
        Dictionary<String, Object> props = new Hashtable<>();
        props.put(EventConstants.EVENT_TOPIC, new String[] {"io/chiral/protocol/*"});
        handler = ctx.registerService(EventHandler.class, EVENTS::add, props);
        managers = new ServiceTracker<>(ctx, ProtocolManager.class, null);
        managers.open();
        stores = new ServiceTracker<>(ctx, ContentStore.class, null);
        stores.open();
        assertNotNull(managers.waitForService(10_000), "ProtocolManager not registered");
        assertNotNull(stores.waitForService(10_000), "ContentStore not registered");
        // the configured instance: listening on 127.0.0.1 only
        await(() -> http() != null && http().listenAddresses().size() == 1
                && http().listenAddresses().get(0).startsWith("127.0.0.1:"), "http protocol did not register");
    }

    static void configure(ConfigurationAdmin cm, String pid, Object... kv) throws IOException {
        Configuration c = cm.getConfiguration(pid, "?");
        Dictionary<String, Object> d = new Hashtable<>();
        for (int i = 0; i < kv.length; i += 2) {
            d.put((String) kv[i], kv[i + 1]);
        }
        c.update(d);
    }

    @AfterAll
    static void close() {
        handler.unregister();
        managers.close();
        stores.close();
    }

    static ContentProtocol http() {
        ProtocolManager pm = managers.getService();
        return pm == null ? null : pm.protocol("http").orElse(null);
    }

    static Bundle httpBundle() {
        return Arrays.stream(ctx.getBundles()).filter(b -> "io.chiral.protocol.http".equals(b.getSymbolicName()))
                .findFirst().orElseThrow();
    }

    static void await(BooleanSupplier cond, String what) throws Exception {
        Await.until(Duration.ofSeconds(15), what, cond::getAsBoolean);
    }

    static int port(ContentProtocol p) {
        String a = p.listenAddresses().get(0);
        return Integer.parseInt(a.substring(a.lastIndexOf(':') + 1));
    }

    @Test
    void protocolManagerFollowsTheBundleAndTheSocketIsReleased() throws Exception {
        ContentProtocol before = http();
        int port = port(before);
        assertEquals(List.of("127.0.0.1:" + port), before.listenAddresses());
        EVENTS.clear();

        httpBundle().stop();
        await(() -> http() == null, "ProtocolManager still lists http after its bundle stopped");
        assertTrue(managers.getService().protocols().isEmpty());
        assertThrows(ConnectException.class, () -> {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 2000);
            }
        }, "stopped bundle left its server socket open");
        Event removed = EVENTS.poll(5, TimeUnit.SECONDS);
        assertNotNull(removed, "no PROTOCOL_REMOVED event");
        assertEquals(ChiralEvents.PROTOCOL_REMOVED, removed.getTopic());
        assertEquals("http", removed.getProperty(ChiralEvents.PROP_PROTOCOL));

        httpBundle().start();
        await(() -> http() != null, "http did not come back after its bundle started");
        assertEquals(port, port(http()), "a restarted transport keeps its remembered port");
        Event added = EVENTS.poll(5, TimeUnit.SECONDS);
        assertNotNull(added, "no PROTOCOL_ADDED event");
        assertEquals(ChiralEvents.PROTOCOL_ADDED, added.getTopic());
    }

    @Test
    void httpServerServesManifestChunksAndRanges() throws Exception {
        byte[] data = new byte[600_000];
        new Random(1).nextBytes(data);
        Path f = dataDir.resolve("served.bin");
        Files.write(f, data);
        FileMetadata m = stores.getService().add(f);
        String base = "http://127.0.0.1:" + port(http()) + "/file/" + m.id().hex();

        HttpResponse<String> manifest = get(base + "/manifest", null, HttpResponse.BodyHandlers.ofString());
        assertEquals(200, manifest.statusCode());
        JsonObject j = JsonParser.parseString(manifest.body()).getAsJsonObject();
        assertEquals(m.id().hex(), j.get("cid").getAsString());
        assertEquals(600_000, j.get("size").getAsLong());
        assertEquals(m.merkleRoot(), j.get("merkleRoot").getAsString());
        assertEquals(3, j.getAsJsonArray("chunks").size());

        HttpResponse<byte[]> chunk2 = get(base + "/chunk/2", null, HttpResponse.BodyHandlers.ofByteArray());
        assertEquals(200, chunk2.statusCode());
        assertTrue(Arrays.equals(Arrays.copyOfRange(data, 2 * 262_144, 600_000), chunk2.body()));

        HttpResponse<byte[]> range = get(base, "bytes=1000-1999", HttpResponse.BodyHandlers.ofByteArray());
        assertEquals(206, range.statusCode());
        assertEquals("bytes 1000-1999/600000", range.headers().firstValue("Content-Range").orElse(""));
        assertTrue(Arrays.equals(Arrays.copyOfRange(data, 1000, 2000), range.body()));
        HttpResponse<byte[]> suffix = get(base, "bytes=-10", HttpResponse.BodyHandlers.ofByteArray());
        assertTrue(Arrays.equals(Arrays.copyOfRange(data, 599_990, 600_000), suffix.body()));
        assertEquals(416, get(base, "bytes=700000-", HttpResponse.BodyHandlers.ofByteArray()).statusCode());
        HttpResponse<byte[]> whole = get(base, null, HttpResponse.BodyHandlers.ofByteArray());
        assertTrue(Arrays.equals(data, whole.body()));

        assertEquals(404, get(base + "/chunk/3", null, HttpResponse.BodyHandlers.ofString()).statusCode());
        assertEquals(404, get(base + "/chunk/-1", null, HttpResponse.BodyHandlers.ofString()).statusCode());
        assertEquals(404, get(base.replace(m.id().hex(), "0".repeat(64)) + "/manifest", null,
                HttpResponse.BodyHandlers.ofString()).statusCode());
        int bad = get("http://127.0.0.1:" + port(http()) + "/file/xyz/manifest", null, HttpResponse.BodyHandlers.ofString()).statusCode();
        assertTrue(bad == 400 || bad == 404, "malformed CID answered " + bad);
        HttpResponse<String> post = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/manifest"))
                .POST(HttpRequest.BodyPublishers.ofString("x")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(405, post.statusCode());

        // a file removed from the store is not served any more
        assertTrue(stores.getService().remove(m.id()));
        assertEquals(404, get(base + "/chunk/0", null, HttpResponse.BodyHandlers.ofString()).statusCode());
        assertFalse(stores.getService().contentPath(m.id()).isPresent());
    }

    static <T> HttpResponse<T> get(String url, String range, HttpResponse.BodyHandler<T> body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).GET();
        if (range != null) {
            b.header("Range", range);
        }
        return HTTP.send(b.build(), body);
    }
}
