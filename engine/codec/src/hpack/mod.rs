//! HPACK (RFC 7541): decoder, encoder, Huffman, tables. (in progress)
