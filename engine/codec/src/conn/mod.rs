//! HTTP/2 connection state machine (RFC 9113 §5, §6.5, §6.9): server and client roles. (in progress)
