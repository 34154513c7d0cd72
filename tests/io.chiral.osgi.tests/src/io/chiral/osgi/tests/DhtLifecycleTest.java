package io.chiral.osgi.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.Signature;
import java.util.Arrays;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.FrameworkUtil;
import org.osgi.framework.ServiceReference;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.osgi.util.tracker.ServiceTracker;

import io.chiral.api.ContentDirectory;
import io.chiral.api.ContentStore;
import io.chiral.api.Dht;
import io.chiral.api.FileMetadata;
import io.chiral.api.NodeKey;

/**
 * The DHT bundle inside one Equinox framework: two instances from factory configurations, the Chiral directory
 * publishing a stored file with this node's HTTP address, and the bundle stopped and started again (services go
 * and come back, the UDP socket is released and the port remembered) and an instance removed with its configuration.
 */
class DhtLifecycleTest {
    static BundleContext ctx;
    static Path dataDir;
    static ConfigurationAdmin cm;
    static ServiceRegistration<NodeKey> key;
    static ServiceTracker<ContentDirectory, ContentDirectory> directories;
    static ServiceTracker<ContentStore, ContentStore> stores;
    static Configuration chiral;
    static Configuration mainline;

    /** A node key backed by a JDK Ed25519 key pair, as io.chiral.node provides it. */
    static final class JdkNodeKey implements NodeKey {
        final KeyPair kp;
        final byte[] pk;

        JdkNodeKey() throws Exception {
            kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
            byte[] x509 = kp.getPublic().getEncoded();
            pk = Arrays.copyOfRange(x509, x509.length - 32, x509.length);
        }

        @Override
        public String nodeId() {
            return java.util.HexFormat.of().formatHex(pk);
        }

        @Override
        public byte[] publicKey() {
            return pk.clone();
        }

        @Override
        public byte[] sign(byte[] message) {
            try {
                Signature s = Signature.getInstance("Ed25519");
                s.initSign(kp.getPrivate());
                s.update(message);
                return s.sign();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
    }

    @BeforeAll
    static void configure() throws Exception {
        Bundle self = FrameworkUtil.getBundle(DhtLifecycleTest.class);
        ctx = self.getBundleContext();
        dataDir = Files.createTempDirectory("chiral-osgi-dht");
        ServiceTracker<ConfigurationAdmin, ConfigurationAdmin> cmt = new ServiceTracker<>(ctx, ConfigurationAdmin.class, null);
        cmt.open();
        cm = cmt.waitForService(10_000);
        assertNotNull(cm, "ConfigAdmin not running");
        if (cm.getConfiguration("io.chiral.core.store", "?").getProperties() == null) {
            ProtocolLifecycleTest.configure(cm, "io.chiral.core.store", "dataDir", dataDir.toString());
        }
        if (cm.getConfiguration("io.chiral.protocol.http", "?").getProperties() == null) {
            ProtocolLifecycleTest.configure(cm, "io.chiral.protocol.http", "port", 0, "bind", "127.0.0.1", "portFile",
                    dataDir.resolve("http.port").toString());
        }
        key = ctx.registerService(NodeKey.class, new JdkNodeKey(), null);
        chiral = factory("chiral");
        mainline = factory("mainline");
        directories = new ServiceTracker<>(ctx, ContentDirectory.class, null);
        directories.open();
        stores = new ServiceTracker<>(ctx, ContentStore.class, null);
        stores.open();
    }

    static Configuration factory(String network) throws Exception {
        Configuration c = cm.getFactoryConfiguration("io.chiral.dht", "osgi-" + network, "?");
        Dictionary<String, Object> p = new Hashtable<>();
        p.put("chiral.dht.network", network);
        p.put("bind", "127.0.0.1");
        p.put("port", 0);
        p.put("portFile", dataDir.resolve("dht-" + network + ".port").toString());
        p.put("nodesFile", dataDir.resolve("dht-" + network + ".nodes").toString());
        c.update(p);
        return c;
    }

    @AfterAll
    static void cleanup() throws Exception {
        for (Configuration c : new Configuration[] {chiral, mainline}) {
            try {
                c.delete();
            } catch (IllegalStateException e) {
                // already deleted by a test
            }
        }
        key.unregister();
        directories.close();
        stores.close();
    }

    static Dht dht(String network) throws Exception {
        ServiceReference<?>[] refs = ctx.getServiceReferences(Dht.class.getName(), "(chiral.dht.network=" + network + ")");
        return refs == null ? null : (Dht) ctx.getService(refs[0]);
    }

    static void await(BooleanSupplier condition, String what) throws Exception {
        Await.until(Duration.ofSeconds(20), what, condition::getAsBoolean);
    }

    static boolean exists(String network) {
        try {
            return dht(network) != null;
        } catch (Exception e) {
            return false;
        }
    }

    @Test
    void instancesDirectoryAndBundleLifecycle() throws Exception {
        await(() -> exists("chiral") && exists("mainline"), "both DHT instances");
        Dht c = dht("chiral");
        int port = c.address().getPort();
        assertEquals(port, Integer.parseInt(Files.readString(dataDir.resolve("dht-chiral.port")).strip()));

        // the directory publishes what the store holds; its own node answers a provider lookup for it
        ContentDirectory dir = directories.waitForService(20_000);
        assertNotNull(dir, "ContentDirectory did not appear");
        ContentStore store = stores.waitForService(10_000);
        Path file = dataDir.resolve("annual-report.bin");
        byte[] data = new byte[600_000];
        new Random(3).nextBytes(data);
        Files.write(file, data);
        FileMetadata meta = store.add(file);
        List<ContentDirectory.Provider> providers = Await.until(Duration.ofSeconds(20), "own provider record",
                () -> dir.providers(meta.id()).toCompletableFuture().get(20, TimeUnit.SECONDS), l -> !l.isEmpty());
        assertEquals(1, providers.size(), "own provider record");
        ContentDirectory.Provider p = providers.get(0);
        assertEquals(key.getReference() != null ? ctx.getService(key.getReference()).nodeId() : "", p.nodeId());
        assertTrue(p.protocols().containsKey("http"), "provider record lists the HTTP transport: " + p.protocols());
        assertEquals(3, p.totalChunks());
        assertTrue(p.complete());
        assertEquals("annual-report.bin", dir.file(meta.id()).toCompletableFuture().get(20, TimeUnit.SECONDS)
                .orElseThrow().name());
        assertEquals(meta.id(), dir.search("annual").toCompletableFuture().get(20, TimeUnit.SECONDS).get(0).id());

        // stop the bundle: services gone, socket released
        Bundle dhtBundle = Arrays.stream(ctx.getBundles()).filter(b -> b.getSymbolicName().equals("io.chiral.dht"))
                .findFirst().orElseThrow();
        dhtBundle.stop();
        assertNull(dht("chiral"));
        assertNull(dht("mainline"));
        assertNull(directories.getService(), "ContentDirectory must leave with the DHT bundle");
        // the JDK closes a selector-registered channel's socket at the selector's next wake-up: allow a moment
        await(() -> {
            try (DatagramSocket s = new DatagramSocket(new InetSocketAddress("127.0.0.1", port))) {
                return s.getLocalPort() == port;
            } catch (java.net.SocketException e) {
                return false;
            }
        }, "UDP port " + port + " to be released");
        // start again: same port (remembered), directory back
        dhtBundle.start();
        await(() -> exists("chiral") && exists("mainline"), "DHT instances after restart");
        assertEquals(port, dht("chiral").address().getPort(), "remembered port");
        assertNotNull(directories.waitForService(20_000));

        // deleting a configuration removes that instance only
        mainline.delete();
        await(() -> !exists("mainline"), "mainline instance to go");
        assertTrue(exists("chiral"));
    }
}
