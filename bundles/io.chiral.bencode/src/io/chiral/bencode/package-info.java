/**
 * Bencoding (BEP 3) for everything the node reads from the network: a strict decoder with hard limits on input
 * size, nesting and element count that rejects non-canonical input, and the matching encoder. Values are
 * {@link java.lang.Long}, {@link io.chiral.bencode.Bytes}, {@link java.util.List} and
 * {@link java.util.SortedMap}{@code <Bytes, Object>}.
 */
@org.osgi.annotation.versioning.Version("0.1.0")
package io.chiral.bencode;
