/** One place for sockets: the node's shared Netty event loops and its global upload/download rate limits. */
@org.osgi.annotation.versioning.Version("0.2.0")
package io.chiral.net;
