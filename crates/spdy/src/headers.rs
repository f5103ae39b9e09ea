//! SPDY/3 name/value header blocks and their compression: one zlib stream per direction of a
//! connection, primed with the SPDY dictionary, each block ending in a sync flush (what
//! moby/spdystream writes with `zlib.NewWriterLevelDict` and reads with `zlib.NewReaderDict`).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::Error;
use crate::dictionary::dictionary;

/// Header names and values in order; names are lowercase on the wire. A header with several
/// values appears once per value here and is joined with NUL bytes on the wire.
pub type Headers = Vec<(String, String)>;

/// The first value of `name` (case-insensitive).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Serializes a header block (uncompressed), joining repeated names' values with NUL.
fn encode_block(headers: &Headers) -> Vec<u8> {
    let mut names: Vec<String> = Vec::new();
    let mut values: Vec<Vec<&str>> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        match names.iter().position(|n| *n == name) {
            Some(i) => values[i].push(value),
            None => {
                names.push(name);
                values.push(vec![value]);
            }
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(names.len() as u32).to_be_bytes());
    for (name, vals) in names.iter().zip(values) {
        let value = vals.join("\0");
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Parses an uncompressed header block.
fn decode_block(block: &[u8]) -> Result<Headers, Error> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], Error> {
        if b.len() < n {
            return Err(Error::Protocol("truncated header block".into()));
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    fn length(b: &mut &[u8]) -> Result<usize, Error> {
        let raw = take(b, 4)?;
        Ok(u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
    }
    let mut b = block;
    let count = length(&mut b)?;
    let mut headers = Headers::new();
    for _ in 0..count {
        let n = length(&mut b)?;
        let name = String::from_utf8_lossy(take(&mut b, n)?).to_ascii_lowercase();
        let n = length(&mut b)?;
        let value = String::from_utf8_lossy(take(&mut b, n)?).into_owned();
        for v in value.split('\0') {
            headers.push((name.clone(), v.to_string()));
        }
    }
    Ok(headers)
}

/// Compresses the header blocks one side of a connection sends.
pub struct HeaderEncoder {
    zlib: Compress,
}

impl Default for HeaderEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderEncoder {
    pub fn new() -> Self {
        Self {
            zlib: Compress::new(Compression::best(), true),
        }
    }

    /// The compressed block for `headers`, flushed so the peer can decode it at once.
    pub fn encode(&mut self, headers: &Headers) -> Result<Vec<u8>, Error> {
        if self.zlib.total_in() == 0 && self.zlib.total_out() == 0 {
            self.zlib
                .set_dictionary(&dictionary())
                .map_err(|e| Error::Protocol(format!("header compression: {e}")))?;
        }
        let input = encode_block(headers);
        let mut out = Vec::with_capacity(input.len() + 64);
        let start_in = self.zlib.total_in();
        loop {
            let consumed = (self.zlib.total_in() - start_in) as usize;
            out.reserve(256);
            let before_out = self.zlib.total_out();
            self.zlib
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| Error::Protocol(format!("header compression: {e}")))?;
            let done = (self.zlib.total_in() - start_in) as usize == input.len();
            // A sync flush is complete once output stops filling the spare capacity.
            if done && out.len() < out.capacity() && self.zlib.total_out() >= before_out {
                return Ok(out);
            }
        }
    }
}

/// Decompresses the header blocks one side of a connection receives.
pub struct HeaderDecoder {
    zlib: Decompress,
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderDecoder {
    pub fn new() -> Self {
        Self {
            zlib: Decompress::new(true),
        }
    }

    /// Decodes one compressed block.
    pub fn decode(&mut self, compressed: &[u8]) -> Result<Headers, Error> {
        let bad = |e: String| Error::Protocol(format!("header decompression: {e}"));
        let mut out: Vec<u8> = Vec::with_capacity(compressed.len() * 4 + 64);
        let start_in = self.zlib.total_in();
        loop {
            let consumed = (self.zlib.total_in() - start_in) as usize;
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(256));
            }
            match self
                .zlib
                .decompress_vec(&compressed[consumed..], &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.zlib
                        .set_dictionary(&dictionary())
                        .map_err(|e| bad(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(bad(e.to_string())),
            }
            let all_in = (self.zlib.total_in() - start_in) as usize == compressed.len();
            if all_in && out.len() < out.capacity() {
                break;
            }
        }
        decode_block(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn blocks_round_trip_through_one_compression_context() {
        let mut encoder = HeaderEncoder::new();
        let mut decoder = HeaderDecoder::new();
        let first = h(&[("streamType", "error")]);
        let second = h(&[("streamtype", "data"), ("port", "80"), ("requestID", "0")]);
        let a = encoder.encode(&first).unwrap();
        let b = encoder.encode(&second).unwrap();
        assert_eq!(decoder.decode(&a).unwrap(), h(&[("streamtype", "error")]));
        assert_eq!(
            decoder.decode(&b).unwrap(),
            h(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")])
        );
    }

    #[test]
    fn repeated_names_share_one_nul_joined_value() {
        let block = encode_block(&h(&[("a", "1"), ("a", "2")]));
        assert_eq!(block, b"\0\0\0\x01\0\0\0\x01a\0\0\0\x031\x002");
        assert_eq!(decode_block(&block).unwrap(), h(&[("a", "1"), ("a", "2")]));
    }

    /// Blocks as Go's `zlib.NewWriterLevelDict(w, BestCompression, dict)` + `Flush` write them
    /// (made with another zlib, CPython's, level 9 primed with the same dictionary, sync
    /// flushes): `streamtype: error` then `streamtype: stdin`, as kubectl opens exec streams.
    /// The first starts with the zlib header naming the dictionary's Adler-32 (e3c6a7c2).
    #[test]
    fn decodes_blocks_compressed_by_another_zlib() {
        let first = [
            0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xa6, 0x23, 0x46, 0x70, 0x3a, 0x2b, 0x29,
            0x4a, 0x4d, 0xcc, 0x85, 0x16, 0x25, 0xac, 0xa9, 0xa0, 0x80, 0x06, 0x00, 0x00, 0x00,
            0xff, 0xff,
        ];
        let second = [
            0xc2, 0x2e, 0x55, 0x5c, 0x02, 0xcc, 0x2e, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
        ];
        let mut decoder = HeaderDecoder::new();
        assert_eq!(
            decoder.decode(&first).unwrap(),
            h(&[("streamtype", "error")])
        );
        assert_eq!(
            decoder.decode(&second).unwrap(),
            h(&[("streamtype", "stdin")])
        );
    }
}
