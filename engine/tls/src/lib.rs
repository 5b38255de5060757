//! ringedge-tls: rustls server and origin-client configuration (ALPN h2) and TLS session driving. Filled in by issue 3.
