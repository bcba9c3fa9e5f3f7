//! Header blocks written by another implementation (the `hpack` package from PyPI, with
//! Huffman coding and its dynamic table on), decoded in sequence on one connection.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn text(headers: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// A size update to 256, `x-long` with 300 Huffman-coded 'v's, then `:status: 200`.
const FOURTH: &str = concat!(
    "3fe1014085f2b507aa6fff8801efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf",
    "7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efd",
    "fbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7",
    "efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdf",
    "bf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7e",
    "fdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfb",
    "f7efdfbf7efdfbf7efdfbf7f88",
);

#[test]
fn blocks_from_another_encoder() {
    let mut d = Decoder::new(4096);
    let first = d
        .decode(&hex("885f8b1d75d0620d263d4c4d6564408e9acac8b0c842d6958b510f21aa9b903485a9264fafa90b2d03497ea6f66aff6196dd6d5f4a084a693f75040138a01bb817ee01e53168df"))
        .unwrap();
    assert_eq!(
        text(&first),
        pairs(&[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-accept-encoding", "identity,deflate,gzip"),
            ("date", "Sun, 22 Nov 2026 05:19:08 GMT"),
        ])
    );
    let second = d
        .decode(&hex("40889acac8b21234da8f810740899acac8b5254207317f80"))
        .unwrap();
    assert_eq!(
        text(&second),
        pairs(&[("grpc-status", "0"), ("grpc-message", "")])
    );
    // Names and values from the dynamic table entries the blocks above added.
    let third = d
        .decode(&hex(
            "88c27f00820b5f7f009bb6b426c28e95440b6a1f719a81c74154fffe3fffeea9ffff63ffbf",
        ))
        .unwrap();
    assert_eq!(third[2], ("grpc-status".to_string(), b"14".to_vec()));
    assert_eq!(
        third[3],
        (
            "grpc-message".to_string(),
            b"upstream%20unavailable \xc3\xa9 \x01~".to_vec()
        )
    );
    // A size update to 256 empties the table; a 338-byte entry then does not fit.
    let fourth = d.decode(&hex(FOURTH)).unwrap();
    assert_eq!(fourth[0].0, "x-long");
    assert_eq!(fourth[0].1, vec![b'v'; 300]);
    assert_eq!(text(&fourth[1..]), pairs(&[(":status", "200")]));
    assert!(d.dynamic.is_empty() && d.size == 0);
}

/// RFC 7541 C.4.1: the first request of the Huffman example.
#[test]
fn rfc_example() {
    let mut d = Decoder::new(4096);
    let h = d
        .decode(&hex("828684418cf1e3c2e5f23a6ba0ab90f4ff"))
        .unwrap();
    assert_eq!(
        text(&h),
        pairs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ])
    );
}

#[test]
fn literals_we_write_read_back() {
    let mut block = Vec::new();
    let long = "x".repeat(1000);
    encode_literal(
        &mut block,
        ":path",
        b"/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    encode_literal(&mut block, "x-long", long.as_bytes());
    let h = Decoder::new(4096).decode(&block).unwrap();
    assert_eq!(
        h[0].1,
        b"/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    );
    assert_eq!(h[1].1, long.as_bytes());
}

#[test]
fn bad_blocks_are_errors() {
    let mut d = Decoder::new(4096);
    assert!(d.decode(&[0x80]).is_err()); // index 0
    assert!(d.decode(&[0xbe]).is_err()); // index 62, empty dynamic table
    assert!(d.decode(&[0x00, 0x05, b'a']).is_err()); // truncated
    assert!(d.decode(&[0x00, 0x81, 0x00, 0x00]).is_err()); // Huffman padding of zeros
    assert!(d
        .decode(&[0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
        .is_err()); // huge integer
}
