/** One place for sockets: the node's shared Netty event loops, its global upload/download rate limits and the connection limits of listeners. */
@org.osgi.annotation.versioning.Version("0.3.0")
package io.chiral.net;
