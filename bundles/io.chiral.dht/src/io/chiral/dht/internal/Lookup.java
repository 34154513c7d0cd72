package io.chiral.dht.internal;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;

import io.chiral.bencode.Bencode;
import io.chiral.bencode.Bytes;

/**
 * An iterative Kademlia lookup (event loop only): keeps the candidates sorted by XOR distance to the target, has
 * at most α queries in flight, and ends when the k closest candidates that did not fail have all answered (or none
 * is left to ask). Along the way it collects what the query kind returns: peers ({@code get_peers}), a BEP 44
 * item ({@code get}: immutable checked against the target, mutable against its signature, highest {@code seq}
 * kept) or Chiral records ({@code rget}: each signature checked). The hop count of a node is one more than that
 * of the node that told us about it; nodes from our own routing table are hop 1.
 */
public final class Lookup {
    public enum Kind {
        FIND_NODE("find_node", "target"), GET_PEERS("get_peers", "info_hash"), GET("get", "target"), RGET("rget", "target");

        final String method;
        final String argument;

        Kind(String method, String argument) {
            this.method = method;
            this.argument = argument;
        }
    }

    private enum State { NEW, ASKED, ANSWERED, FAILED }

    private static final class Candidate {
        final Contact contact;
        final int hop;
        State state = State.NEW;
        Bytes token;

        Candidate(Contact contact, int hop) {
            this.contact = contact;
            this.hop = hop;
        }
    }

    /** A node that answered, with the write token it gave. */
    public record Responder(Contact contact, Bytes token) {
    }

    /** A verified BEP 44 item. {@code key} is null for immutable items. */
    public record Item(byte[] value, byte[] key, byte[] salt, long seq, byte[] sig) {
    }

    /**
     * Outcome: the k closest responders, collected peers / item / records, nodes queried and answered, hops to the
     * closest responder (or to the first value for a value lookup), time taken.
     */
    public record Result(NodeId target, List<Responder> closest, List<InetSocketAddress> peers, Item item,
            List<ChiralRecord> records, int queried, int responded, int hops, long millis) {
    }

    private final DhtNode node;
    private final NodeId target;
    private final Kind kind;
    private final byte[] salt;
    private final TreeMap<NodeId, Candidate> candidates;
    private final Set<InetSocketAddress> peers = new LinkedHashSet<>();
    private final Map<Bytes, ChiralRecord> records = new LinkedHashMap<>();
    private final CompletableFuture<Result> done = new CompletableFuture<>();
    private final long started = DhtNode.now();
    private Item item;
    private int valueHop;
    private int inFlight;
    private int queried;
    private int responded;

    Lookup(DhtNode node, NodeId target, Kind kind, byte[] salt) {
        this.node = node;
        this.target = target;
        this.kind = kind;
        this.salt = salt;
        this.candidates = new TreeMap<>(target::closer);
    }

    /** Starts from the routing table's closest nodes; {@code localRecords} are the node's own stored ones. */
    CompletableFuture<Result> start(List<ChiralRecord> localRecords) {
        for (ChiralRecord r : localRecords) {
            keep(r);
        }
        for (Contact c : node.table.closest(target, node.settings.k() * 2)) {
            candidates.putIfAbsent(c.id(), new Candidate(c, 1));
        }
        step();
        return done;
    }

    private int k() {
        return node.settings.k();
    }

    private void step() {
        if (done.isDone()) {
            return;
        }
        if (kind == Kind.GET && item != null && item.key() == null) {
            finish(); // an immutable item is the same wherever it is found
            return;
        }
        // the k closest candidates that have not failed: ask the new ones, finish when all answered
        int seen = 0;
        boolean allAnswered = true;
        for (Candidate c : candidates.values()) {
            if (c.state == State.FAILED) {
                continue;
            }
            if (seen++ >= k()) {
                break;
            }
            if (c.state == State.NEW && inFlight < node.settings.alpha()) {
                ask(c);
            }
            if (c.state != State.ANSWERED) {
                allAnswered = false;
            }
        }
        if (allAnswered || inFlight == 0) {
            finish();
        }
    }

    private void ask(Candidate c) {
        c.state = State.ASKED;
        inFlight++;
        queried++;
        Map<String, Object> args = new LinkedHashMap<>();
        args.put(kind.argument, target.bytes());
        node.query(c.contact.address(), c.contact.id(), kind.method, args).whenComplete((r, e) -> {
            if (e == null) {
                absorb(c, r);
                if (kind == Kind.RGET && c.token != null && holdsMore(r)) {
                    askWithToken(c); // its first answer was cut short until this node proved its address
                    return;
                }
            }
            inFlight--;
            if (e != null) {
                c.state = State.FAILED;
            } else {
                c.state = State.ANSWERED;
                responded++;
            }
            step();
        });
    }

    /** An {@code rget} answer that says the node holds more records ({@code n}) than it sent. */
    private static boolean holdsMore(Krpc.Response r) {
        SortedMap<Bytes, Object> v = r.values();
        int sent = v.get(Bytes.of("recs")) instanceof List<?> l ? l.size() : 0;
        return v.get(Bytes.of("n")) instanceof Long n && n > sent;
    }

    /** The second {@code rget} to a node that holds records, with the token it gave: the full answer. */
    private void askWithToken(Candidate c) {
        Map<String, Object> args = new LinkedHashMap<>();
        args.put(kind.argument, target.bytes());
        args.put("token", c.token);
        node.query(c.contact.address(), c.contact.id(), kind.method, args).whenComplete((r, e) -> {
            inFlight--;
            c.state = State.ANSWERED; // it answered once already
            responded++;
            if (e == null) {
                absorb(c, r);
            }
            step();
        });
    }

    private void absorb(Candidate from, Krpc.Response r) {
        SortedMap<Bytes, Object> v = r.values();
        if (v.get(Bytes.of("token")) instanceof Bytes t && t.length() <= 64) {
            from.token = t;
        }
        if (v.get(Bytes.of("nodes")) instanceof Bytes nodes && nodes.length() % Contact.COMPACT_NODE == 0) {
            List<Contact> learned = Contact.parseNodes(nodes.toByteArray());
            int n = 0;
            for (Contact c : learned) {
                if (n++ >= node.maxContactsPerResponse()) {
                    break;
                }
                if (!c.id().equals(node.self) && !candidates.containsKey(c.id())) {
                    candidates.put(c.id(), new Candidate(c, from.hop + 1));
                }
            }
            trim();
        }
        switch (kind) {
            case GET_PEERS -> {
                if (v.get(Bytes.of("values")) instanceof List<?> values) {
                    for (Object o : values) {
                        if (o instanceof Bytes p && p.length() == Contact.COMPACT_PEER && peers.size() < 1000) {
                            InetSocketAddress a = Contact.parsePeer(p.toByteArray());
                            if (a.getPort() != 0 && peers.add(a) && valueHop == 0) {
                                valueHop = from.hop;
                            }
                        }
                    }
                }
            }
            case GET -> absorbItem(from, v);
            case RGET -> {
                if (v.get(Bytes.of("recs")) instanceof List<?> recs) {
                    int n = 0;
                    for (Object o : recs) {
                        if (n++ >= 64) {
                            break;
                        }
                        try {
                            ChiralRecord rec = ChiralRecord.parse(o);
                            if (rec.target().equals(target)) {
                                keep(rec);
                                if (valueHop == 0) {
                                    valueHop = from.hop;
                                }
                            }
                        } catch (IllegalArgumentException bad) {
                            // unsigned, badly signed or malformed: dropped
                        }
                    }
                }
            }
            default -> {
            }
        }
    }

    private void keep(ChiralRecord rec) {
        ChiralRecord old = records.get(rec.identity());
        if (old == null || old.seq() < rec.seq()) {
            if (old != null || records.size() < 1024) {
                records.put(rec.identity(), rec);
            }
        }
    }

    private void absorbItem(Candidate from, SortedMap<Bytes, Object> v) {
        Object value = v.get(Bytes.of("v"));
        if (value == null) {
            return;
        }
        byte[] encoded = Bencode.encode(value);
        if (encoded.length > Bep44.MAX_VALUE) {
            return;
        }
        if (v.get(Bytes.of("k")) instanceof Bytes k && v.get(Bytes.of("sig")) instanceof Bytes sig
                && v.get(Bytes.of("seq")) instanceof Long seq) {
            byte[] key = k.toByteArray();
            if (!Bep44.mutableTarget(key, salt).equals(target)
                    || !Bep44.verify(key, salt, seq, encoded, sig.toByteArray())) {
                return;
            }
            if (item == null || item.seq() < seq) {
                item = new Item(encoded, key, salt, seq, sig.toByteArray());
                valueHop = from.hop;
            }
        } else if (Bep44.immutableTarget(encoded).equals(target)) {
            if (item == null) {
                item = new Item(encoded, null, null, 0, null);
                valueHop = from.hop;
            }
        }
    }

    /** Bounds the candidate list: drops the farthest that were not asked yet. */
    private void trim() {
        int max = k() * 8;
        if (candidates.size() <= max) {
            return;
        }
        Iterator<Map.Entry<NodeId, Candidate>> it = candidates.descendingMap().entrySet().iterator();
        while (candidates.size() > max && it.hasNext()) {
            if (it.next().getValue().state == State.NEW) {
                it.remove();
            }
        }
    }

    private void finish() {
        List<Responder> closest = new ArrayList<>();
        int hops = 0;
        for (Candidate c : candidates.values()) {
            if (c.state == State.ANSWERED) {
                if (closest.isEmpty()) {
                    hops = c.hop;
                }
                closest.add(new Responder(c.contact, c.token));
                if (closest.size() >= k()) {
                    break;
                }
            }
        }
        boolean value = !peers.isEmpty() || item != null || !records.isEmpty();
        done.complete(new Result(target, closest, List.copyOf(peers), item, List.copyOf(records.values()), queried,
                responded, value && valueHop > 0 ? valueHop : hops, DhtNode.now() - started));
    }
}
