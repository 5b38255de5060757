//! [`ConnConfig`]: every limit of the connection state machine, named as in CONTRACTS.md.

/// Limits and settings of one HTTP/2 connection. Field names match the proxy's `[limits.h2]`
/// section; defaults are safe for an internet-facing edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnConfig {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce (streams beyond it are refused
    /// with RST_STREAM(REFUSED_STREAM)). Default 256.
    pub max_concurrent_streams: u32,
    /// Our SETTINGS_INITIAL_WINDOW_SIZE: receive window per stream. Default 262144. Values below
    /// 65535 are raised to 65535: a client may spend the default window before it has seen our
    /// SETTINGS (RFC 9113 §3.4, §6.9.2), and we must not punish that.
    pub initial_stream_window: u32,
    /// Our connection-level receive window (raised from 65535 by WINDOW_UPDATE on stream 0 after
    /// the preface). Default 1048576.
    pub connection_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE we advertise (16384..=16777215). Default 16384.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce (RFC 7541 §4.1 accounting).
    /// Default 65536.
    pub max_header_list_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE we advertise (our HPACK decoder's table bound). Default 4096.
    pub header_table_size: u32,
    /// CONTINUATION frames per header block before GOAWAY(ENHANCE_YOUR_CALM). Default 32.
    pub max_continuation_frames: u32,
    /// Encoded bytes per header block (HEADERS + CONTINUATIONs) before GOAWAY(ENHANCE_YOUR_CALM).
    /// Default 131072.
    pub max_header_block_bytes: u32,
    /// Peer RST_STREAMs plus streams we reset because of peer errors per flood window before
    /// GOAWAY(ENHANCE_YOUR_CALM) (rapid reset, CVE-2023-44487). Default 200.
    pub max_resets_per_window: u32,
    /// SETTINGS frames per flood window (CVE-2019-9515). Default 100.
    pub max_settings_per_window: u32,
    /// PING frames per flood window (CVE-2019-9512). Default 100.
    pub max_pings_per_window: u32,
    /// Zero-length DATA/HEADERS/CONTINUATION without END_STREAM per flood window
    /// (CVE-2019-9518). Default 100.
    pub max_empty_frames_per_window: u32,
    /// Length of the flood window for the `*_per_window` counters, in milliseconds. Default 1000.
    pub flood_window_ms: u32,
    /// Streams refused for exceeding `max_concurrent_streams` before GOAWAY(ENHANCE_YOUR_CALM).
    /// Default 100.
    pub max_refused_streams: u32,
    /// Our SETTINGS must be ACKed within this, else GOAWAY(SETTINGS_TIMEOUT). Default 5000.
    pub settings_ack_timeout_ms: u32,
    /// Bytes of queued output before we stop accepting input from a peer that does not read:
    /// GOAWAY(ENHANCE_YOUR_CALM). Default 4194304.
    pub max_pending_output: u32,
    /// (Extra.) Closed streams remembered so in-flight frames after a close or reset are
    /// tolerated (RFC 9113 §5.1 "closed"): at least the last `max_closed_streams` closes are
    /// remembered, older ones may be forgotten. Memory: at most `2 * next_power_of_two(n)`
    /// 12-byte slots plus `2 * n` overflow entries per connection. Default 1024.
    pub max_closed_streams: u32,
    /// (Extra.) DATA payloads up to this size are copied into the coalesced control buffer;
    /// larger ones are queued as separate `Bytes` views. Default 1024.
    pub output_copy_threshold: u32,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            max_concurrent_streams: 256,
            initial_stream_window: 262_144,
            connection_window: 1_048_576,
            max_frame_size: 16_384,
            max_header_list_size: 65_536,
            header_table_size: 4096,
            max_continuation_frames: 32,
            max_header_block_bytes: 131_072,
            max_resets_per_window: 200,
            max_settings_per_window: 100,
            max_pings_per_window: 100,
            max_empty_frames_per_window: 100,
            flood_window_ms: 1000,
            max_refused_streams: 100,
            settings_ack_timeout_ms: 5000,
            max_pending_output: 4_194_304,
            max_closed_streams: 1024,
            output_copy_threshold: 1024,
        }
    }
}

impl ConnConfig {
    /// Clamps values into what the protocol can carry (windows 65535..=2^31-1, max frame size
    /// 16384..=16777215). [`super::Connection::new`] applies it.
    pub fn normalized(mut self) -> Self {
        use crate::frame::{
            DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW, MAX_MAX_FRAME_SIZE, MAX_WINDOW,
        };
        self.initial_stream_window = self.initial_stream_window.clamp(DEFAULT_WINDOW, MAX_WINDOW);
        self.connection_window = self.connection_window.clamp(DEFAULT_WINDOW, MAX_WINDOW);
        self.max_frame_size = self
            .max_frame_size
            .clamp(DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE);
        self
    }
}
