//! HPACK (RFC 7541): enough to write a request's headers and read a server's answer.
//!
//! Requests are written as literals without indexing and without Huffman coding (always
//! valid, and a request's few headers gain little from either). Answers are read in full
//! generality: static and dynamic table, size updates, Huffman-coded strings, since the
//! server's encoder chooses.

use std::collections::VecDeque;

/// RFC 7541 Appendix A.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Bit length of each symbol's Huffman code (RFC 7541 Appendix B; 256 is EOS). The code
/// is canonical: codes of one length are consecutive in symbol order, so the lengths
/// determine every code.
const HUFFMAN_BITS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const MAX_BITS: usize = 30;

/// Canonical decoding tables: per length, the first code, how many codes, and where their
/// symbols start in `symbols` (ordered by length, then symbol).
struct Canonical {
    first: [u32; MAX_BITS + 1],
    count: [u32; MAX_BITS + 1],
    offset: [u32; MAX_BITS + 1],
    symbols: [u16; 257],
}

fn canonical() -> &'static Canonical {
    static TABLE: std::sync::OnceLock<Canonical> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut c = Canonical {
            first: [0; MAX_BITS + 1],
            count: [0; MAX_BITS + 1],
            offset: [0; MAX_BITS + 1],
            symbols: [0; 257],
        };
        for &bits in &HUFFMAN_BITS {
            c.count[bits as usize] += 1;
        }
        let (mut code, mut at) = (0u32, 0u32);
        for len in 1..=MAX_BITS {
            c.first[len] = code;
            c.offset[len] = at;
            at += c.count[len];
            code = (code + c.count[len]) << 1;
        }
        let mut next = c.offset;
        for (sym, &bits) in HUFFMAN_BITS.iter().enumerate() {
            c.symbols[next[bits as usize] as usize] = sym as u16;
            next[bits as usize] += 1;
        }
        c
    })
}

fn huffman_decode(input: &[u8]) -> Result<Vec<u8>, String> {
    let table = canonical();
    let mut out = Vec::with_capacity(input.len() * 8 / 5);
    let (mut code, mut len) = (0u32, 0usize);
    for byte in input {
        for shift in (0..8).rev() {
            code = code << 1 | u32::from(byte >> shift & 1);
            len += 1;
            let index = code.wrapping_sub(table.first[len]);
            if index < table.count[len] {
                let sym = table.symbols[(table.offset[len] + index) as usize];
                if sym == 256 {
                    return Err("Huffman string contains EOS".into());
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            } else if len == MAX_BITS {
                return Err("invalid Huffman code".into());
            }
        }
    }
    // What is left must be padding: fewer than 8 bits, all ones (a prefix of EOS).
    if len >= 8 || code != (1 << len) - 1 {
        return Err("invalid Huffman padding".into());
    }
    Ok(out)
}

/// Writes `name: value` as a literal header field without indexing, new name.
pub(crate) fn encode_literal(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(0);
    encode_int(out, 7, 0, name.len());
    out.extend_from_slice(name.as_bytes());
    encode_int(out, 7, 0, value.len());
    out.extend_from_slice(value);
}

fn encode_int(out: &mut Vec<u8>, prefix_bits: u32, first: u8, mut n: usize) {
    let max = (1usize << prefix_bits) - 1;
    if n < max {
        out.push(first | n as u8);
        return;
    }
    out.push(first | max as u8);
    n -= max;
    while n >= 128 {
        out.push((n % 128 + 128) as u8);
        n /= 128;
    }
    out.push(n as u8);
}

/// The decoding side of one connection: its dynamic table lives as long as the connection.
pub(crate) struct Decoder {
    dynamic: VecDeque<(String, Vec<u8>)>,
    size: usize,
    max_size: usize,
}

impl Decoder {
    /// `max_size` is the SETTINGS_HEADER_TABLE_SIZE we announced (4096 by default).
    pub(crate) fn new(max_size: usize) -> Self {
        Decoder {
            dynamic: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// Decodes one complete header block into (name, value) pairs.
    pub(crate) fn decode(&mut self, mut block: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut headers = Vec::new();
        while let Some(&first) = block.first() {
            if first & 0x80 != 0 {
                let index = decode_int(&mut block, 7)?;
                headers.push(self.entry(index)?);
            } else if first & 0x40 != 0 {
                let (name, value) = self.literal(&mut block, 6)?;
                self.insert(name.clone(), value.clone());
                headers.push((name, value));
            } else if first & 0x20 != 0 {
                let size = decode_int(&mut block, 5)?;
                if size > 4096 {
                    return Err(format!("table size update to {size} exceeds our limit"));
                }
                self.max_size = size;
                self.evict(0);
            } else {
                // Without indexing (0000) and never indexed (0001): both 4-bit prefixes.
                headers.push(self.literal(&mut block, 4)?);
            }
        }
        Ok(headers)
    }

    fn literal(&self, block: &mut &[u8], prefix: u32) -> Result<(String, Vec<u8>), String> {
        let index = decode_int(block, prefix)?;
        let name = if index == 0 {
            String::from_utf8(decode_string(block)?).map_err(|_| "header name is not UTF-8")?
        } else {
            self.entry(index)?.0
        };
        Ok((name, decode_string(block)?))
    }

    fn entry(&self, index: usize) -> Result<(String, Vec<u8>), String> {
        match index {
            0 => Err("header index 0".into()),
            i if i <= STATIC.len() => {
                let (n, v) = STATIC[i - 1];
                Ok((n.to_string(), v.as_bytes().to_vec()))
            }
            i => self
                .dynamic
                .get(i - STATIC.len() - 1)
                .cloned()
                .ok_or_else(|| format!("header index {i} is not in the table")),
        }
    }

    fn insert(&mut self, name: String, value: Vec<u8>) {
        let size = name.len() + value.len() + 32;
        self.evict(size);
        if size <= self.max_size {
            self.size += size;
            self.dynamic.push_front((name, value));
        }
    }

    /// Drops the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.dynamic.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => break,
            }
        }
    }
}

fn decode_int(block: &mut &[u8], prefix_bits: u32) -> Result<usize, String> {
    let (&first, rest) = block.split_first().ok_or("truncated header block")?;
    *block = rest;
    let max = (1usize << prefix_bits) - 1;
    let mut n = usize::from(first) & max;
    if n < max {
        return Ok(n);
    }
    let mut shift = 0;
    loop {
        let (&b, rest) = block.split_first().ok_or("truncated header block")?;
        *block = rest;
        if shift > 28 {
            return Err("header integer too large".into());
        }
        n += usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
}

fn decode_string(block: &mut &[u8]) -> Result<Vec<u8>, String> {
    let huffman = block.first().is_some_and(|b| b & 0x80 != 0);
    let len = decode_int(block, 7)?;
    if block.len() < len {
        return Err("truncated header block".into());
    }
    let (raw, rest) = block.split_at(len);
    *block = rest;
    if huffman {
        huffman_decode(raw)
    } else {
        Ok(raw.to_vec())
    }
}

#[cfg(test)]
mod tests;
