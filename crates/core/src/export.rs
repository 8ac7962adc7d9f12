//! Reading and writing embeddings in the TSV layout used by the TensorFlow
//! Embedding Projector and by the original notebook.
//!
//! * `vecs.tsv`: one embedding per line, values separated by a single tab,
//!   formatted exactly like `np.savetxt(f, arr, delimiter='\t')` does for a
//!   `float32` array (format `%.18e`, newline `\n`).
//! * `meta.tsv`: one integer label per line, no header (the Projector's
//!   single-column metadata format).
//!
//! The parsers are more lenient than the writers: they accept `\r\n` line
//! endings, a missing or extra trailing newline, a UTF-8 byte-order mark and
//! values separated by any run of spaces or tabs, so that files written by
//! numpy, by this crate or by hand can all be scored.

use std::fmt::Write as _;
use std::io::Write;

use crate::shape::{ShapeError, rows_of};

/// Errors from writing or parsing embedding / label TSV files.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The underlying writer failed.
    #[error("I/O error while writing TSV: {0}")]
    Io(#[from] std::io::Error),
    /// The buffer is not a whole number of rows of the dimension.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// The text to parse contains no data lines.
    #[error("the file is empty (no data lines)")]
    Empty,
    /// A blank line appears before the last data line.
    #[error("line {line}: unexpected blank line")]
    BlankLine {
        /// 1-based line number.
        line: usize,
    },
    /// A row has a different number of values than the first row.
    #[error("line {line}: expected {expected} values (as on line 1), found {found}")]
    RaggedRow {
        /// 1-based line number.
        line: usize,
        /// Number of values on the first data line.
        expected: usize,
        /// Number of values on this line.
        found: usize,
    },
    /// A field could not be parsed as a number.
    #[error("line {line}, column {column}: {token:?} is not a number")]
    NotANumber {
        /// 1-based line number.
        line: usize,
        /// 1-based column (field) number.
        column: usize,
        /// The offending field.
        token: String,
    },
    /// A metadata line is not a single non-negative integer.
    #[error("line {line}: expected one non-negative integer label, found {text:?}")]
    BadLabel {
        /// 1-based line number.
        line: usize,
        /// The offending line (trimmed).
        text: String,
    },
    /// The file is not UTF-8 text (see [`text_of`]).
    #[error("line {line}: not UTF-8 text (a binary file?)")]
    NotUtf8 {
        /// 1-based line number of the first invalid byte.
        line: usize,
    },
}

/// The bytes of a TSV file as text, or [`ExportError::NotUtf8`] naming the line of the first
/// byte that is not UTF-8.
///
/// # Errors
/// [`ExportError::NotUtf8`].
pub fn text_of(bytes: &[u8]) -> Result<&str, ExportError> {
    std::str::from_utf8(bytes).map_err(|e| ExportError::NotUtf8 {
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
    })
}

/// Formats one value exactly like numpy's `'%.18e' % float(x)`.
///
/// Rust's `{:.18e}` already yields the correctly rounded 19 significant digits
/// (ties to even, like glibc and CPython), but writes the exponent as `e-2`
/// where C writes `e-02`; this fixes the exponent and spells non-finite values
/// the way Python does (`nan`, `inf`, `-inf`; NaN never carries a sign).
fn push_numpy_e18(out: &mut String, x: f32) {
    if x.is_nan() {
        out.push_str("nan");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
        return;
    }
    let start = out.len();
    // Writing into a String cannot fail.
    let _ = write!(out, "{:.18e}", f64::from(x));
    // `{:e}` always writes `<mantissa>e<exponent>`; rewrite the exponent.
    let Some(e_pos) = out[start..].rfind('e').map(|p| start + p) else {
        return;
    };
    let Ok(exp) = out[e_pos + 1..].parse::<i32>() else {
        return;
    };
    out.truncate(e_pos);
    let sign = if exp < 0 { '-' } else { '+' };
    let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
}

fn check_shape(len: usize, dim: usize) -> Result<(), ExportError> {
    rows_of(len, dim)?;
    Ok(())
}

/// Appends the `vecs.tsv` text of `data` (row-major, `dim` values per row).
fn push_vecs(out: &mut String, data: &[f32], dim: usize) {
    for row in data.chunks_exact(dim) {
        for (j, &x) in row.iter().enumerate() {
            if j > 0 {
                out.push('\t');
            }
            push_numpy_e18(out, x);
        }
        out.push('\n');
    }
}

/// Writes `data` (row-major, `dim` values per row) byte-for-byte as
/// `np.savetxt(f, data.reshape(-1, dim), delimiter='\t')` would for a
/// `float32` array.
///
/// Every value is printed as `%.18e` of the value widened to `f64`
/// (`0.1f32` becomes `1.000000014901161194e-01`), values are separated by one
/// tab and every row ends with `\n`. Non-finite values are written as `nan`,
/// `inf` and `-inf`. Empty `data` writes nothing.
///
/// # Errors
/// [`ExportError::Shape`] if `data.len()` is
/// not a multiple of `dim`, or [`ExportError::Io`] from the writer.
pub fn write_vecs_tsv<W: Write + ?Sized>(
    w: &mut W,
    data: &[f32],
    dim: usize,
) -> Result<(), ExportError> {
    check_shape(data.len(), dim)?;
    // Format a bounded number of rows at a time so huge exports don't need
    // the whole text in memory, while small writers still get few calls.
    let rows_per_chunk = (4096 / dim).max(1);
    let mut buf = String::new();
    for chunk in data.chunks(rows_per_chunk * dim) {
        buf.clear();
        push_vecs(&mut buf, chunk, dim);
        w.write_all(buf.as_bytes())?;
    }
    Ok(())
}

/// Returns the text [`write_vecs_tsv`] would write (handy for browser
/// downloads).
///
/// # Errors
/// [`ExportError::Shape`].
pub fn vecs_tsv_string(data: &[f32], dim: usize) -> Result<String, ExportError> {
    check_shape(data.len(), dim)?;
    // A typical value takes 24 bytes plus its separator.
    let mut out = String::with_capacity(data.len() * 25);
    push_vecs(&mut out, data, dim);
    Ok(out)
}

/// Writes one label per line (`7\n2\n1\n...`), no header: the single-column
/// metadata format of the Embedding Projector and what the notebook writes.
///
/// # Errors
/// [`ExportError::Io`] from the writer.
pub fn write_meta_tsv<W: Write + ?Sized>(w: &mut W, labels: &[u8]) -> Result<(), ExportError> {
    w.write_all(meta_tsv_string(labels).as_bytes())?;
    Ok(())
}

/// Returns the text [`write_meta_tsv`] would write.
pub fn meta_tsv_string(labels: &[u8]) -> String {
    let mut out = String::with_capacity(labels.len() * 2);
    for &label in labels {
        let _ = writeln!(out, "{label}");
    }
    out
}

/// Yields `(1-based line number, line content)` for every line that may hold
/// data: a leading BOM and `\r` line endings are removed, trailing blank lines
/// are dropped, and a blank line before the last data line is an error.
fn data_lines(text: &str) -> impl Iterator<Item = Result<(usize, &str), ExportError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let last_data = lines.iter().rposition(|l| !l.trim().is_empty());
    let end = last_data.map_or(0, |i| i + 1);
    lines.into_iter().take(end).enumerate().map(|(i, line)| {
        if line.trim().is_empty() {
            Err(ExportError::BlankLine { line: i + 1 })
        } else {
            Ok((i + 1, line))
        }
    })
}

/// Parses a `vecs.tsv` file into a flat row-major buffer and its dimension.
///
/// Values may be separated by tabs and/or spaces; `\r\n` line endings and a
/// trailing newline are accepted. Each value is parsed directly as `f32`
/// (correctly rounded), so text written by [`write_vecs_tsv`] or by numpy
/// from a `float32` array round-trips bit-exactly. `nan`, `inf` and `-inf`
/// are accepted as numbers.
///
/// # Errors
/// [`ExportError::Empty`] when there is no data line,
/// [`ExportError::BlankLine`], [`ExportError::RaggedRow`] or
/// [`ExportError::NotANumber`], each with the 1-based line number.
pub fn parse_vecs_tsv(text: &str) -> Result<(Vec<f32>, usize), ExportError> {
    let mut data = Vec::new();
    let mut dim = 0;
    for item in data_lines(text) {
        let (line, content) = item?;
        let before = data.len();
        for (col, token) in content.split_whitespace().enumerate() {
            let value: f32 = token.parse().map_err(|_| ExportError::NotANumber {
                line,
                column: col + 1,
                token: token.to_owned(),
            })?;
            data.push(value);
        }
        let found = data.len() - before;
        if dim == 0 {
            dim = found;
        } else if found != dim {
            return Err(ExportError::RaggedRow {
                line,
                expected: dim,
                found,
            });
        }
    }
    if dim == 0 {
        return Err(ExportError::Empty);
    }
    Ok((data, dim))
}

/// Parses a single-column `meta.tsv` file: one non-negative integer label per
/// line, no header. Surrounding whitespace, `\r\n` line endings and a trailing
/// newline are accepted.
///
/// # Errors
/// [`ExportError::Empty`] when there is no data line, [`ExportError::BlankLine`],
/// or [`ExportError::BadLabel`] (with the 1-based line number) for anything
/// that is not exactly one integer in `0..=u32::MAX`.
pub fn parse_meta_tsv(text: &str) -> Result<Vec<u32>, ExportError> {
    let mut labels = Vec::new();
    for item in data_lines(text) {
        let (line, content) = item?;
        let trimmed = content.trim();
        let label = trimmed.parse::<u32>().map_err(|_| ExportError::BadLabel {
            line,
            text: trimmed.to_owned(),
        })?;
        labels.push(label);
    }
    if labels.is_empty() {
        return Err(ExportError::Empty);
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn fmt(x: f32) -> String {
        let mut s = String::new();
        push_numpy_e18(&mut s, x);
        s
    }

    #[test]
    fn formats_like_numpy_savetxt() {
        // Reference strings produced by `np.savetxt` (numpy 2.4) on float32 arrays.
        assert_eq!(fmt(0.1), "1.000000014901161194e-01");
        assert_eq!(fmt(1e-10), "1.000000013351431960e-10");
        assert_eq!(fmt(123_456.0), "1.234560000000000000e+05");
        assert_eq!(fmt(3.4e38), "3.399999952144364249e+38");
        assert_eq!(fmt(0.0), "0.000000000000000000e+00");
        assert_eq!(fmt(-0.0), "-0.000000000000000000e+00");
        assert_eq!(fmt(1.0), "1.000000000000000000e+00");
        assert_eq!(fmt(-2.5), "-2.500000000000000000e+00");
        assert_eq!(fmt(f32::NAN), "nan");
        assert_eq!(fmt(-f32::NAN), "nan");
        assert_eq!(fmt(f32::INFINITY), "inf");
        assert_eq!(fmt(f32::NEG_INFINITY), "-inf");
        // Smallest subnormal: a two-digit negative exponent.
        assert_eq!(fmt(f32::from_bits(1)), "1.401298464324817071e-45");
        // 1048577 / 2^19 = 2.0000019073486328125 exactly: a tie at the 19th
        // significant digit, which C and CPython round to even.
        assert_eq!(fmt(1_048_577.0 / 524_288.0), "2.000001907348632812e+00");
    }

    #[test]
    fn notebook_value_round_trips() {
        let s = "-5.663547292351722717e-02";
        let x = s.parse::<f64>().unwrap() as f32;
        assert_eq!(fmt(x), s);
    }

    #[test]
    fn writes_rows_with_tabs_and_newlines() {
        let data = [0.1f32, -0.0, 123_456.0, 1.0, f32::NAN, -2.5];
        let text = vecs_tsv_string(&data, 3).unwrap();
        assert_eq!(
            text,
            "1.000000014901161194e-01\t-0.000000000000000000e+00\t1.234560000000000000e+05\n\
             1.000000000000000000e+00\tnan\t-2.500000000000000000e+00\n"
        );
        let mut bytes = Vec::new();
        write_vecs_tsv(&mut bytes, &data, 3).unwrap();
        assert_eq!(bytes, text.as_bytes());
        assert_eq!(vecs_tsv_string(&[], 4).unwrap(), "");
    }

    #[test]
    fn writers_accept_trait_objects() {
        let mut bytes = Vec::new();
        let w: &mut dyn Write = &mut bytes;
        write_vecs_tsv(w, &[1.0], 1).unwrap();
        write_meta_tsv(w, &[4]).unwrap();
        assert_eq!(bytes, b"1.000000000000000000e+00\n4\n");
    }

    #[test]
    fn write_rejects_bad_shapes() {
        assert!(matches!(
            vecs_tsv_string(&[1.0], 0),
            Err(ExportError::Shape(ShapeError::ZeroDim))
        ));
        assert!(matches!(
            write_vecs_tsv(&mut Vec::new(), &[1.0, 2.0, 3.0], 2),
            Err(ExportError::Shape(ShapeError::RaggedData {
                len: 3,
                dim: 2
            }))
        ));
    }

    #[test]
    fn meta_is_one_label_per_line() {
        assert_eq!(meta_tsv_string(&[7, 2, 10, 0]), "7\n2\n10\n0\n");
        let mut bytes = Vec::new();
        write_meta_tsv(&mut bytes, &[3, 255]).unwrap();
        assert_eq!(bytes, b"3\n255\n");
        assert_eq!(meta_tsv_string(&[]), "");
    }

    #[test]
    fn vecs_round_trip_bit_exact() {
        // Many rows so that write_vecs_tsv goes through several chunks.
        let data: Vec<f32> = (0..3000).map(|i| (i as f32 * 0.37).sin() * 1e3).collect();
        let mut bytes = Vec::new();
        write_vecs_tsv(&mut bytes, &data, 3).unwrap();
        let (parsed, dim) = parse_vecs_tsv(std::str::from_utf8(&bytes).unwrap()).unwrap();
        assert_eq!(dim, 3);
        assert_eq!(
            parsed.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            data.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn random_bit_patterns_round_trip() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(0x5eed);
        let mut checked = 0;
        while checked < 20_000 {
            let x = f32::from_bits(rng.random::<u32>());
            if !x.is_finite() {
                continue;
            }
            let s = fmt(x);
            let back: f32 = s.parse().unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{x:e} printed as {s}");
            // Parsing through f64 (what numpy's loadtxt does) is exact too.
            assert_eq!((s.parse::<f64>().unwrap() as f32).to_bits(), x.to_bits());
            checked += 1;
        }
    }

    #[test]
    fn parse_is_lenient_about_whitespace_and_line_endings() {
        let text = "\u{feff}1 2\t3\r\n4\t 5  6\r\n\r\n\n";
        let (data, dim) = parse_vecs_tsv(text).unwrap();
        assert_eq!(dim, 3);
        assert_eq!(data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let (data, dim) = parse_vecs_tsv("nan\t-inf\n").unwrap();
        assert_eq!(dim, 2);
        assert!(data[0].is_nan() && data[1] == f32::NEG_INFINITY);
        assert_eq!(parse_meta_tsv("7\r\n 2 \n10").unwrap(), [7, 2, 10]);
        assert_eq!(parse_meta_tsv("4294967295\n").unwrap(), [u32::MAX]);
    }

    #[test]
    fn non_utf8_text_names_its_line() {
        assert_eq!(text_of(b"1\t2\n").unwrap(), "1\t2\n");
        let e = text_of(b"1\t2\n3\t\xff\n").unwrap_err();
        assert!(matches!(e, ExportError::NotUtf8 { line: 2 }), "{e}");
    }

    #[test]
    fn parse_reports_line_numbers() {
        let err = parse_vecs_tsv("1\t2\n3\t4\n5\n").unwrap_err();
        assert!(matches!(
            err,
            ExportError::RaggedRow {
                line: 3,
                expected: 2,
                found: 1
            }
        ));
        assert!(err.to_string().contains("line 3"));
        let err = parse_vecs_tsv("1\t2\n3\tx4\n").unwrap_err();
        assert!(matches!(
            err,
            ExportError::NotANumber { line: 2, column: 2, ref token } if token == "x4"
        ));
        assert!(matches!(
            parse_vecs_tsv("1\n\n2\n"),
            Err(ExportError::BlankLine { line: 2 })
        ));
        assert!(matches!(parse_vecs_tsv(""), Err(ExportError::Empty)));
        assert!(matches!(parse_vecs_tsv("\n \r\n"), Err(ExportError::Empty)));
        assert!(matches!(parse_meta_tsv(""), Err(ExportError::Empty)));
        for (text, line) in [
            ("1\n-1\n", 2),
            ("label\n1\n", 1),
            ("1\n2 3\n", 2),
            ("1.5\n", 1),
        ] {
            match parse_meta_tsv(text) {
                Err(ExportError::BadLabel { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: unexpected {other:?}"),
            }
        }
        assert!(matches!(
            parse_meta_tsv("4294967296\n"),
            Err(ExportError::BadLabel { line: 1, .. })
        ));
    }

    #[test]
    fn meta_round_trip() {
        let labels: Vec<u8> = (0..=255).collect();
        let parsed = parse_meta_tsv(&meta_tsv_string(&labels)).unwrap();
        assert_eq!(
            parsed,
            labels.iter().map(|&l| u32::from(l)).collect::<Vec<_>>()
        );
    }
}
