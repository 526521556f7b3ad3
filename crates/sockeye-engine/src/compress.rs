//! HTTP compression of polling answers (`http_compression`): gzip, deflate (zlib) or brotli,
//! chosen from the client's `Accept-Encoding`, for answers at or over the threshold (1 KiB by
//! default, as the reference server).

use std::io::Write;

use bytes::Bytes;
use http::HeaderMap;

/// A content coding the engine can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Brotli,
    Gzip,
    Deflate,
}

/// gzip and deflate level: 1 (fast). On 16 KiB of chat-like JSON, level 6 (zlib's default,
/// the reference server's) cost several times the CPU for a few percent fewer bytes
/// (docs/benchmarks.md).
fn level() -> flate2::Compression {
    flate2::Compression::fast()
}

/// Brotli quality: 4 compresses polling payloads (JSON text) about as well as gzip at a
/// fraction of the CPU of brotli's default (11).
const BROTLI_QUALITY: u32 = 4;
/// Brotli window (log2 of bytes): 22 is brotli's default.
const BROTLI_WINDOW: u32 = 22;

impl Encoding {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }
    }

    /// The coding to use for a client's `Accept-Encoding` headers: the one with the highest
    /// quality value; on a tie gzip, then brotli, then deflate (gzip first as the reference
    /// server, which only knows gzip and deflate). `None` when the client accepts none of them
    /// (or sent no header: identity).
    pub(crate) fn negotiate(headers: &HeaderMap) -> Option<Encoding> {
        let mut best: Option<(u16, u8, Encoding)> = None;
        for value in headers.get_all(http::header::ACCEPT_ENCODING) {
            let Ok(value) = value.to_str() else { continue };
            for item in value.split(',') {
                let mut parts = item.split(';');
                let name = parts.next().unwrap_or_default().trim();
                let quality = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1000), parse_quality);
                let Some(quality) = quality.filter(|&q| q > 0) else {
                    continue;
                };
                let (rank, encoding) = match name.to_ascii_lowercase().as_str() {
                    "gzip" | "x-gzip" => (3, Encoding::Gzip),
                    "br" => (2, Encoding::Brotli),
                    "deflate" => (1, Encoding::Deflate),
                    _ => continue,
                };
                if best.is_none_or(|(q, r, _)| (quality, rank) > (q, r)) {
                    best = Some((quality, rank, encoding));
                }
            }
        }
        best.map(|(_, _, encoding)| encoding)
    }

    /// The compressed bytes; `None` if the encoder failed (the answer then goes out as is).
    pub(crate) fn compress(self, data: &[u8]) -> Option<Bytes> {
        let out = match self {
            Encoding::Gzip => {
                let mut out = Vec::with_capacity(data.len() / 3 + 32);
                // RFC 1952: magic, deflate, no flags, no time, no extra flags, unknown OS.
                out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
                with_deflater(false, |compress| finish(compress, data, &mut out))?;
                let mut crc = flate2::Crc::new();
                crc.update(data);
                out.extend_from_slice(&crc.sum().to_le_bytes());
                // ISIZE: the length modulo 2^32.
                let size = u32::try_from(data.len() % (1 << 32)).unwrap_or(0);
                out.extend_from_slice(&size.to_le_bytes());
                out
            }
            Encoding::Deflate => {
                let mut out = Vec::with_capacity(data.len() / 3 + 16);
                with_deflater(true, |compress| finish(compress, data, &mut out))?;
                out
            }
            Encoding::Brotli => {
                // A window just large enough for the answer: brotli allocates its ring
                // buffer from it, 4 MiB per answer at its default of 22.
                let bits = usize::BITS - data.len().max(1).leading_zeros();
                let window = bits.clamp(16, BROTLI_WINDOW);
                let mut enc = brotli::CompressorWriter::new(
                    Vec::with_capacity(data.len() / 3 + 16),
                    4096,
                    BROTLI_QUALITY,
                    window,
                );
                enc.write_all(data).ok()?;
                // Finishes the stream.
                enc.into_inner()
            }
        };
        Some(Bytes::from(out))
    }
}

thread_local! {
    /// This thread's deflate compressors, raw (for gzip) and with a zlib header (for
    /// `deflate`), reset after each answer: a compressor is a few hundred KiB to allocate and
    /// clear, several times the cost of compressing a polling answer.
    static DEFLATERS: std::cell::RefCell<[Option<flate2::Compress>; 2]> =
        const { std::cell::RefCell::new([None, None]) };
}

/// Runs `f` with this thread's compressor (`zlib` header or raw), reset afterwards.
fn with_deflater<T>(zlib: bool, f: impl FnOnce(&mut flate2::Compress) -> Option<T>) -> Option<T> {
    DEFLATERS.with(|cell| {
        let Ok(mut slots) = cell.try_borrow_mut() else {
            return f(&mut flate2::Compress::new(level(), zlib));
        };
        let slot = slots.get_mut(usize::from(zlib))?;
        let compress = slot.get_or_insert_with(|| flate2::Compress::new(level(), zlib));
        let result = f(compress);
        compress.reset();
        result
    })
}

/// Compresses all of `data` into `out` and ends the stream.
fn finish(compress: &mut flate2::Compress, data: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let start = compress.total_in();
    loop {
        let consumed = usize::try_from(compress.total_in() - start).ok()?;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(256));
        }
        let status = compress
            .compress_vec(
                data.get(consumed..).unwrap_or_default(),
                out,
                flate2::FlushCompress::Finish,
            )
            .ok()?;
        if status == flate2::Status::StreamEnd {
            return Some(());
        }
    }
}

/// A `q` value (`0`, `0.5`, `1.000`) in thousandths; `None` when malformed.
fn parse_quality(q: &str) -> Option<u16> {
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match int {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1].get(i).copied().unwrap_or(0);
    }
    let value = whole * 1000 + thousandths;
    (value <= 1000).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn accept(value: &str) -> Option<Encoding> {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::ACCEPT_ENCODING, value.parse().unwrap());
        Encoding::negotiate(&headers)
    }

    #[test]
    fn negotiation_follows_quality_then_preference() {
        assert_eq!(accept("gzip, deflate, br, zstd"), Some(Encoding::Gzip));
        assert_eq!(accept("br"), Some(Encoding::Brotli));
        assert_eq!(accept("deflate, br;q=0.9"), Some(Encoding::Deflate));
        assert_eq!(accept("gzip;q=0.5, br;q=0.8"), Some(Encoding::Brotli));
        assert_eq!(accept("gzip;q=0, identity"), None);
        assert_eq!(accept("identity"), None);
        assert_eq!(accept("gzip;q=2"), None);
        assert_eq!(accept("*"), None);
        assert_eq!(Encoding::negotiate(&HeaderMap::new()), None);
    }

    #[test]
    fn every_coding_round_trips() {
        let data = "42[\"message\",\"hello world\"]\u{1e}".repeat(100);
        for encoding in [Encoding::Gzip, Encoding::Deflate, Encoding::Brotli] {
            let packed = encoding.compress(data.as_bytes()).unwrap();
            assert!(packed.len() < data.len() / 10, "{encoding:?}");
            let mut back = Vec::new();
            match encoding {
                Encoding::Gzip => {
                    flate2::read::GzDecoder::new(&packed[..])
                        .read_to_end(&mut back)
                        .unwrap();
                }
                Encoding::Deflate => {
                    flate2::read::ZlibDecoder::new(&packed[..])
                        .read_to_end(&mut back)
                        .unwrap();
                }
                Encoding::Brotli => {
                    brotli::Decompressor::new(&packed[..], 4096)
                        .read_to_end(&mut back)
                        .unwrap();
                }
            }
            assert_eq!(back, data.as_bytes(), "{encoding:?}");
        }
    }
}
