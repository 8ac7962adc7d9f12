//! The IDX reader: [`parse_images`] / [`parse_labels`], gzipped or plain, with every limit
//! checked before anything is allocated and decompression stopped at the header's size.

use std::fmt;
use std::io::Read;

use super::*;
use crate::shape::IMAGE_SIDE;

/// Images parsed from one IDX file.
#[derive(Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    /// `count * rows * cols` pixels, row-major, image after image.
    pub pixels: Vec<u8>,
}

impl fmt::Debug for IdxImages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IdxImages {{ count: {}, rows: {}, cols: {} }}",
            self.count, self.rows, self.cols
        )
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Reads from `r` until `buf` is full or the stream ends; returns the number of bytes read.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8], role: FileRole) -> Result<usize, DataError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(gzip_error(role, &e)),
        }
    }
    Ok(filled)
}

fn gzip_error(role: FileRole, e: &std::io::Error) -> DataError {
    let detail = if e.kind() == std::io::ErrorKind::UnexpectedEof {
        "the stream ends early (the file is truncated — incomplete download?)".to_string()
    } else {
        e.to_string()
    };
    DataError::CorruptGzip { role, detail }
}

/// A short description of what some non-IDX bytes look like, for [`DataError::NotIdx`].
fn describe_garbage(bytes: &[u8], decompressed: bool) -> String {
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let head = head.join(" ");
    let text_head = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).to_ascii_lowercase();
    let text_head = text_head.trim_start();
    let is_html = text_head.starts_with("<!doctype") || text_head.starts_with("<html");
    let what = if decompressed && is_gzip(bytes) {
        " — this is gzip-compressed twice; decompress it once (gunzip) and pick the result"
    } else if bytes.starts_with(b"PK\x03\x04") {
        " — this is a ZIP archive; extract it and pick the files inside"
    } else if bytes.len() > 262 && &bytes[257..262] == b"ustar" {
        " — this is a tar archive; extract it and pick the files inside"
    } else if bytes.starts_with(b"BZh") {
        " — this is bzip2-compressed; only gzip (.gz) or uncompressed IDX files are supported"
    } else if bytes.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]) {
        " — this is xz-compressed; only gzip (.gz) or uncompressed IDX files are supported"
    } else if bytes.starts_with(b"\x89PNG") {
        " — this is a PNG image, not an IDX file"
    } else if is_html {
        " — this is an HTML page (wrong URL or a download error page?)"
    } else if bytes
        .iter()
        .take(64)
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        " — this looks like text (CSV?), not binary IDX data"
    } else {
        ""
    };
    let origin = if decompressed {
        "the decompressed data starts with"
    } else {
        "starts with"
    };
    format!("{origin} bytes {head}{what}")
}

/// Reads and validates one IDX array of unsigned bytes with `ndims` dimensions (3 for images, 1
/// for labels). Returns the dimensions and the payload. Gzip is detected by its magic bytes.
fn read_idx<const NDIMS: usize>(
    bytes: &[u8],
    role: FileRole,
    expected_magic: u32,
    check_dims: impl Fn(&[u32; NDIMS]) -> Result<(), DataError>,
) -> Result<([u32; NDIMS], Vec<u8>), DataError> {
    if bytes.is_empty() {
        return Err(DataError::Empty { role });
    }
    let gz = is_gzip(bytes);
    let mut plain: &[u8] = bytes;
    let mut decoder;
    let reader: &mut dyn Read = if gz {
        decoder = flate2::read::MultiGzDecoder::new(bytes);
        &mut decoder
    } else {
        &mut plain
    };
    let header_len = 4 + 4 * NDIMS as u64;
    read_magic(reader, bytes, gz, role, expected_magic, header_len)?;
    let dims = read_dims::<NDIMS>(reader, role, header_len)?;
    check_dims(&dims)?;
    let payload_len: u64 = dims.iter().map(|&d| d as u64).product();
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(DataError::BadHeader {
            role,
            detail: format!(
                "the header describes {payload_len} bytes of data (dimensions {dims:?}), more than \
                 the {} MiB limit on one file's data ({MAX_PAYLOAD_BYTES} bytes)",
                MAX_PAYLOAD_BYTES >> 20
            ),
        });
    }
    if payload_len == 0 {
        return Err(DataError::Empty { role });
    }
    let payload = read_payload(reader, bytes.len(), gz, role, header_len, payload_len)?;
    Ok((dims, payload))
}

/// Reads the magic number: an IDX file's, and `expected`; else says what the bytes look like.
fn read_magic(
    reader: &mut dyn Read,
    bytes: &[u8],
    gz: bool,
    role: FileRole,
    expected: u32,
    header_len: u64,
) -> Result<(), DataError> {
    let mut magic_bytes = [0u8; 4];
    let got = read_up_to(reader, &mut magic_bytes, role)?;
    if gz && got == 0 {
        return Err(DataError::Empty { role });
    }
    let head = &magic_bytes[..got];
    let looks_idx = head.first().is_none_or(|&b| b == 0)
        && head.get(1).is_none_or(|&b| b == 0)
        && head
            .get(2)
            .is_none_or(|&b| matches!(b, 0x08 | 0x09 | 0x0B..=0x0E))
        && head.get(3).is_none_or(|&b| b != 0);
    if !looks_idx {
        return Err(DataError::NotIdx {
            role,
            detail: if gz {
                // Decompress a little more, to recognise e.g. a .tar.gz.
                let mut head = [0u8; 512];
                head[..got].copy_from_slice(&magic_bytes[..got]);
                let more = read_up_to(reader, &mut head[got..], role).unwrap_or(0);
                describe_garbage(&head[..got + more], true)
            } else {
                describe_garbage(bytes, false)
            },
        });
    }
    if got < 4 {
        return Err(DataError::Truncated {
            role,
            expected: header_len,
            actual: got as u64,
        });
    }
    let magic = u32::from_be_bytes(magic_bytes);
    if magic != expected {
        return Err(DataError::WrongMagic {
            role,
            found: magic,
            expected,
        });
    }
    Ok(())
}

/// Reads the `NDIMS` big-endian dimensions after the magic number.
fn read_dims<const NDIMS: usize>(
    reader: &mut dyn Read,
    role: FileRole,
    header_len: u64,
) -> Result<[u32; NDIMS], DataError> {
    let mut dims_bytes = [0u8; 16];
    let dims_bytes = &mut dims_bytes[..4 * NDIMS];
    let got = read_up_to(reader, dims_bytes, role)?;
    if got < dims_bytes.len() {
        return Err(DataError::Truncated {
            role,
            expected: header_len,
            actual: 4 + got as u64,
        });
    }
    let mut dims = [0u32; NDIMS];
    for (d, chunk) in dims.iter_mut().zip(dims_bytes.chunks_exact(4)) {
        *d = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    Ok(dims)
}

/// Reads the `payload_len` bytes the header describes, and at most one more (trailing data is
/// an error; an arbitrarily large stream is never decompressed). Every allocation is fallible
/// (a browser page runs out of memory long before a native process does) and grows by doubling
/// up to the described size plus one byte at most.
fn read_payload(
    reader: &mut dyn Read,
    file_len: usize,
    gz: bool,
    role: FileRole,
    header_len: u64,
    payload_len: u64,
) -> Result<Vec<u8>, DataError> {
    let expected_total = header_len + payload_len;
    // `payload_len <= MAX_PAYLOAD_BYTES` fits `usize` on every supported target (wasm32 included).
    let payload_usize = usize::try_from(payload_len).map_err(|_| DataError::BadHeader {
        role,
        detail: format!("{payload_len} bytes do not fit in memory on this platform"),
    })?;
    let capacity = if gz {
        payload_usize.min(file_len.saturating_mul(16).max(1 << 16))
    } else {
        payload_usize.min(file_len)
    };
    let out_of_memory = |_| DataError::OutOfMemory {
        role,
        bytes: payload_len,
    };
    let mut payload: Vec<u8> = Vec::new();
    payload.try_reserve_exact(capacity).map_err(out_of_memory)?;
    let mut limited = reader.take(payload_len + 1);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = match limited.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(gzip_error(role, &e)),
        };
        if payload.capacity() - payload.len() < n {
            let target = (payload.capacity() * 2)
                .max(payload.len() + n)
                .min(payload_usize + 1);
            payload
                .try_reserve_exact(target - payload.len())
                .map_err(out_of_memory)?;
        }
        payload.extend_from_slice(&chunk[..n]);
    }
    let actual = payload.len() as u64;
    if actual < payload_len {
        return Err(DataError::Truncated {
            role,
            expected: expected_total,
            actual: header_len + actual,
        });
    }
    if actual > payload_len {
        return Err(DataError::TrailingData {
            role,
            expected: expected_total,
        });
    }
    // For gzip, reaching the end of the stream (which `take` just did) also verified the CRC.
    Ok(payload)
}

/// Parses an images file (`idx3-ubyte`, gzipped or plain). Images must be 28×28.
pub fn parse_images(bytes: &[u8], role: FileRole) -> Result<IdxImages, DataError> {
    let ([count, rows, cols], pixels) = read_idx::<3>(bytes, role, IMAGES_MAGIC, |dims| {
        let [_, rows, cols] = *dims;
        if rows == 0 || cols == 0 || rows > MAX_IMAGE_SIDE || cols > MAX_IMAGE_SIDE {
            return Err(DataError::BadHeader {
                role,
                detail: format!(
                    "images of {rows}×{cols} pixels (each side must be 1..={MAX_IMAGE_SIDE})"
                ),
            });
        }
        if rows as usize != IMAGE_SIDE || cols as usize != IMAGE_SIDE {
            return Err(DataError::WrongDimensions {
                role,
                rows: rows as usize,
                cols: cols as usize,
            });
        }
        Ok(())
    })?;
    Ok(IdxImages {
        count: count as usize,
        rows: rows as usize,
        cols: cols as usize,
        pixels,
    })
}

/// Parses a labels file (`idx1-ubyte`, gzipped or plain). Labels must be `0..=9`.
pub fn parse_labels(bytes: &[u8], role: FileRole) -> Result<Vec<u8>, DataError> {
    let (_, labels) = read_idx::<1>(bytes, role, LABELS_MAGIC, |_| Ok(()))?;
    if let Some((index, &value)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= NUM_CLASSES)
    {
        return Err(DataError::LabelOutOfRange { role, index, value });
    }
    Ok(labels)
}
