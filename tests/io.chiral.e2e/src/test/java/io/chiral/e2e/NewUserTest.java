package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

/**
 * What a new user runs into first: a data directory on another file system or owned by an ordinary user, the
 * addresses {@code chiral id} prints, secrets' file modes, restarts after a crash, and what {@code add} accepts.
 */
class NewUserTest {
    @TempDir
    Path tmp;

    static boolean root() throws Exception {
        return Node.exec(List.of("id", "-u"), Duration.ofSeconds(10)).out().strip().equals("0");
    }

    static void sh(String... cmd) throws Exception {
        Node.Result r = Node.exec(List.of(cmd), Duration.ofSeconds(60));
        assertEquals(0, r.exit(), String.join(" ", cmd) + ": " + r.err() + r.out());
    }

    /** The node's own copy of the product: plugins directly under runtime/plugins, the launcher among them. */
    static void assertRuntimeCopied(Path data) throws Exception {
        Path plugins = data.resolve("runtime/plugins");
        assertFalse(Files.exists(plugins.resolve("plugins")), "plugins were copied into runtime/plugins/plugins");
        try (var s = Files.list(plugins)) {
            assertTrue(s.anyMatch(p -> p.getFileName().toString().startsWith("org.eclipse.equinox.launcher_")),
                    "no launcher in " + plugins);
        }
    }

    @Test
    void aDataDirectoryOnAnotherFileSystemStartsAndRestarts() throws Exception {
        assumeTrue(root(), "skipped: mounting a tmpfs for the data directory needs root");
        Path mnt = Files.createDirectories(tmp.resolve("tmpfs"));
        sh("mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", mnt.toString());
        try {
            Path data = mnt.resolve("node");
            try (Node n = Node.start(data)) {
                assertRuntimeCopied(data);
            }
            try (Node n = Node.start(data)) { // the second start uses the copy the first one made
                n.run("id").ok();
            }
        } finally {
            sh("umount", "-l", mnt.toString());
        }
    }

    @Test
    void anOrdinaryUserWhoCannotHardLinkTheBuildRunsANode() throws Exception {
        assumeTrue(root(), "skipped: running a node as user nobody needs root");
        // protected_hardlinks=1 (Debian's default) forbids nobody to hard-link root's build; /tmp is world-writable
        Path home = Files.createTempDirectory(Path.of("/tmp"), "chiral-nobody");
        try {
            sh("chown", "65534:65534", home.toString());
            Path data = Files.createDirectories(home.resolve("node"));
            sh("chown", "65534:65534", data.toString());
            try (Node n = Node.startAs("65534", data)) {
                assertRuntimeCopied(data);
                // a file nobody may not reach: the error says so instead of "no such file"
                Path locked = Files.createDirectories(tmp.resolve("locked"));
                Files.writeString(locked.resolve("secret.txt"), "not yours");
                Files.setPosixFilePermissions(locked, PosixFilePermissions.fromString("rwx------"));
                Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
                Node.Result r = n.run("add", locked.resolve("secret.txt").toString());
                assertEquals(1, r.exit(), r.out() + r.err());
                assertEquals("chiral: cannot read " + locked.resolve("secret.txt") + ": permission denied", r.err().strip());
            }
        } finally {
            sh("rm", "-rf", home.toString());
        }
    }

    @Test
    void idPrintsAddressesOthersCanUseAndBootstrapTakesThem() throws Exception {
        // bound to the wildcard address, as a user's node is by default
        try (Node a = Node.start(tmp.resolve("a"), "--bind", "0.0.0.0")) {
            String id = a.run("id").ok().out();
            List<String> dht = new ArrayList<>();
            for (String line : id.split("\n")) {
                assertFalse(line.contains("0:0:0:0:0:0:0:0") || line.contains("0.0.0.0"), "unusable address in: " + line);
                if (line.startsWith("dht chiral ")) {
                    dht.add(line.substring("dht chiral ".length()).strip());
                }
            }
            assertTrue(dht.contains(dht.stream().filter(s -> s.startsWith("127.0.0.1:")).findFirst().orElse("none")),
                    "no 127.0.0.1 line for the Chiral DHT in:\n" + id);
            JsonObject chiral = null;
            for (JsonElement e : a.run("--json", "id").ok().json().getAsJsonArray("dht")) {
                if (e.getAsJsonObject().get("network").getAsString().equals("chiral")) {
                    chiral = e.getAsJsonObject();
                }
            }
            assertTrue(chiral != null && chiral.get("address").getAsString().startsWith("127.0.0.1:"), String.valueOf(chiral));

            // the line as printed is a valid --bootstrap, and so is the bracketed IPv6 form
            String port = dht.get(0).substring(dht.get(0).lastIndexOf(':') + 1);
            try (Node b = Node.start(tmp.resolve("b"), "--bootstrap", dht.get(0) + ",[::1]:" + port)) {
                Await.until(Duration.ofSeconds(30), "b to join through a's printed address",
                        () -> b.api("dht/peers").toString(), peers -> peers.contains("127.0.0.1:" + port));
            }
        }
    }

    @Test
    void secretsAreOwnerOnlyOnEveryStart() throws Exception {
        Path data = tmp.resolve("node");
        try (Node n = Node.start(data)) {
            n.run("id").ok();
        }
        Path config = data.resolve("config");
        Files.setPosixFilePermissions(config, PosixFilePermissions.fromString("rwxrwxrwx"));
        Files.setPosixFilePermissions(config.resolve("control.token"), PosixFilePermissions.fromString("rw-r--r--"));
        Files.setPosixFilePermissions(config.resolve("node.key"), PosixFilePermissions.fromString("rw-rw-rw-"));
        try (Node n = Node.start(data)) {
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(config)));
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(data.resolve("keystore"))));
            for (String f : List.of("control.token", "node.key")) {
                assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(config.resolve(f))), f);
            }
        }
    }

    @Test
    void aKilledNodeThatIsStillAZombieIsNotRunning() throws Exception {
        Path data = tmp.resolve("node");
        // a parent that never reaps its child (as a supervisor that is busy, or a shell script, may be)
        String parent = "import subprocess,sys,time\n"
                + "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
                + "print(p.pid, flush=True)\n"
                + "time.sleep(300)\n";
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", "-c", parent, Node.CHIRAL.toString(), "daemon",
                "--data", data.toString(), "--bind", "127.0.0.1", "--mainline-bootstrap", "none"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("CHIRAL_NO_BUILD", "1");
        Process holder = pb.start();
        try {
            var lines = new java.io.BufferedReader(new java.io.InputStreamReader(holder.getInputStream()));
            long pid = Long.parseLong(lines.readLine().strip());
            Node client = Node.client(data);
            Await.until(Duration.ofSeconds(60), "the daemon to come up", () -> client.api("id") != null);
            sh("kill", "-9", Long.toString(pid));
            Path stat = Path.of("/proc/" + pid + "/stat");
            Await.until(Duration.ofSeconds(30), "the killed daemon to become a zombie", () -> {
                String st = Files.readString(stat);
                return st.substring(st.lastIndexOf(')') + 2);
            }, st -> st.startsWith("Z"));
            try (Node n = Node.start(data)) {
                n.run("id").ok();
            }
        } finally {
            holder.destroyForcibly();
            holder.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void addRefusesWhatIsNotARegularFileAndNamesTheRealPathOfALink() throws Exception {
        try (Node n = Node.start(tmp.resolve("node"))) {
            Node.Result proc = n.run("add", "/proc/self/environ");
            assertEquals(1, proc.exit(), proc.out() + proc.err());
            assertTrue(proc.err().contains("pseudo file system"), proc.err());
            assertFalse(n.run("ls").ok().out().contains("environ"));

            Path fifo = tmp.resolve("fifo");
            sh("mkfifo", fifo.toString());
            Node.Result f = n.run("add", fifo.toString());
            assertEquals(1, f.exit(), f.out() + f.err());
            assertTrue(f.err().contains("not a regular file"), f.err());

            Path real = Node.randomFile(Files.createDirectories(tmp.resolve("elsewhere")), "real-name.bin", 1000, 7);
            Path link = Files.createSymbolicLink(tmp.resolve("link.bin"), real);
            Node.Result added = n.run("add", link.toString()).ok();
            assertTrue(added.out().contains("sharing " + real), added.out());
            assertEquals(Node.sha256(real), added.lastLine());
            assertTrue(n.run("ls").ok().out().contains("real-name.bin"));
        }
    }

    @Test
    void aFileDownloadedBeforeARestartIsNotDownloadedAgain() throws Exception {
        try (Node seeder = Node.start(tmp.resolve("seeder"))) {
            Path file = Node.randomFile(tmp, "movie.mkv", 3 << 20, 11);
            String cid = seeder.run("add", file.toString()).ok().lastLine();
            Path data = tmp.resolve("leecher");
            Path first;
            try (Node leecher = Node.start(data)) {
                first = Path.of(leecher.run("get", cid, "--from", seeder.httpAddress()).ok().lastLine());
            }
            assertEquals(data.resolve("downloads/movie.mkv"), first);
            try (Node leecher = Node.start(data)) {
                // without sources: the node has it, so no DHT lookup is needed
                assertEquals(first, Path.of(leecher.run("get", cid).ok().lastLine()));
                JsonObject again = leecher.run("--json", "get", cid, "--from", seeder.httpAddress()).ok().json();
                assertEquals(first.toString(), again.get("output").getAsString());
                assertEquals("COMPLETED", again.get("state").getAsString());
                assertNotEquals(0, again.get("resumedBytes").getAsLong());
            }
            try (var s = Files.list(data.resolve("downloads"))) {
                assertEquals(List.of(first), s.toList(), "a second copy was made");
            }
        }
    }
}
