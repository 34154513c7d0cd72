package io.chiral.node.internal;

/** A request the control channel answers with an error status and a one-line message. */
final class ControlException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int status;

    ControlException(int status, String message) {
        super(message, null, false, false);
        this.status = status;
    }

    int status() {
        return status;
    }

    static ControlException badRequest(String message) {
        return new ControlException(400, message);
    }

    static ControlException notFound(String message) {
        return new ControlException(404, message);
    }

    static ControlException conflict(String message) {
        return new ControlException(409, message);
    }
}
