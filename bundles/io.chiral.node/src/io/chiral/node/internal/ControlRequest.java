package io.chiral.node.internal;

/**
 * One authenticated control request, copied out of Netty's buffers so that it can be served on a worker thread.
 *
 * @param method upper-case HTTP method
 * @param path   decoded path without query string
 * @param body   request body as UTF-8 text (at most 1 MiB, bounded by the aggregator)
 */
record ControlRequest(String method, String path, String body) {
}
