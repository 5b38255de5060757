//! HTTP/2 frames (RFC 9113 §4, §6): views over the receive buffer and encoders. (in progress)
