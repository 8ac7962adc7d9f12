//! [`DataError`]: everything that can be wrong with a dataset file, each message naming the
//! file and, where it can, what the bytes look like instead.

use super::*;

/// Everything that can be wrong with a dataset file.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum DataError {
    /// Neither a gzip stream nor an IDX file.
    #[error("{role}: not an MNIST IDX file (nor gzip-compressed IDX): {detail}")]
    NotIdx { role: FileRole, detail: String },

    /// The file starts like gzip but the stream is corrupt or cut short.
    #[error("{role}: corrupt gzip stream: {detail}")]
    CorruptGzip { role: FileRole, detail: String },

    /// A valid IDX header, but of the wrong kind of array.
    #[error(
        "{role}: wrong IDX magic number 0x{found:08X}, expected 0x{expected:08X} ({}){}",
        magic_kind(*.expected),
        magic_hint(*.role, *.found, *.expected)
    )]
    WrongMagic {
        role: FileRole,
        found: u32,
        expected: u32,
    },

    /// Images that are not 28×28.
    #[error(
        "{role}: images are {rows}×{cols}, but the network takes 28×28×1 images (MNIST format); \
         resize the data to 28×28"
    )]
    WrongDimensions {
        role: FileRole,
        rows: usize,
        cols: usize,
    },

    /// A header describing an absurd array (zero or >4096-pixel sides, or more than 2 GiB).
    #[error("{role}: implausible IDX header: {detail}")]
    BadHeader { role: FileRole, detail: String },

    /// Fewer bytes than the header describes. Sizes are of the (decompressed) IDX data.
    #[error(
        "{role}: file is truncated: expected {expected} bytes of IDX data but found only {actual}"
    )]
    Truncated {
        role: FileRole,
        expected: u64,
        actual: u64,
    },

    /// More bytes than the header describes (decompression stops right there).
    #[error(
        "{role}: the file holds more than its header says: data beyond the {expected} bytes its \
         header describes (wrong file, corrupt header or a decompression bomb?)"
    )]
    TrailingData { role: FileRole, expected: u64 },

    /// The memory for the file's data could not be reserved.
    #[error(
        "{role}: not enough memory for the {bytes} bytes of data the file describes; close other \
         tabs or programs, or use a smaller dataset"
    )]
    OutOfMemory { role: FileRole, bytes: u64 },

    /// A file larger than [`MAX_FILE_BYTES`], refused before it is read.
    #[error(
        "{role}: the file is {size} bytes, more than the {} MiB limit on one dataset file \
         (MNIST-format files up to EMNIST size fit)",
        .limit >> 20
    )]
    TooLarge {
        role: FileRole,
        size: u64,
        limit: u64,
    },

    /// No examples (an empty file or a header saying 0 examples).
    #[error("{role}: empty dataset: the file contains no examples")]
    Empty { role: FileRole },

    /// Images and labels of the same part disagree on the number of examples.
    #[error("{part} images and {part} labels do not match: {images} images but {labels} labels")]
    CountMismatch {
        part: Part,
        images: usize,
        labels: usize,
    },

    /// A label outside `0..=9`.
    #[error(
        "{role}: label {value} at index {index} is out of range; labels must be 0..=9 \
         (the app's legend has 10 classes)"
    )]
    LabelOutOfRange {
        role: FileRole,
        index: usize,
        value: u8,
    },

    /// One of the four files was not supplied / not found.
    #[error(
        "{role} file is missing: expected a file named {} (or without .gz)",
        .role.file_name()
    )]
    Missing { role: FileRole },

    /// Two supplied files claim the same role.
    #[error("two files were given as {role}: {first:?} and {second:?}")]
    Duplicate {
        role: FileRole,
        first: String,
        second: String,
    },

    /// Reading a file from disk failed (native only).
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
}

impl DataError {
    /// The file the error is about, where there is one.
    pub fn role(&self) -> Option<FileRole> {
        match self {
            DataError::NotIdx { role, .. }
            | DataError::CorruptGzip { role, .. }
            | DataError::WrongMagic { role, .. }
            | DataError::WrongDimensions { role, .. }
            | DataError::BadHeader { role, .. }
            | DataError::Truncated { role, .. }
            | DataError::TrailingData { role, .. }
            | DataError::TooLarge { role, .. }
            | DataError::OutOfMemory { role, .. }
            | DataError::Empty { role }
            | DataError::LabelOutOfRange { role, .. }
            | DataError::Missing { role }
            | DataError::Duplicate { role, .. } => Some(*role),
            DataError::CountMismatch { .. } | DataError::Io { .. } => None,
        }
    }
}

fn idx_type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "16-bit integer",
        0x0C => "32-bit integer",
        0x0D => "32-bit float",
        0x0E => "64-bit float",
        _ => "unknown type",
    }
}

fn magic_kind(magic: u32) -> String {
    let code = (magic >> 8) as u8;
    let dims = magic as u8;
    match magic {
        IMAGES_MAGIC => "unsigned-byte images, 3 dimensions".to_string(),
        LABELS_MAGIC => "unsigned-byte labels, 1 dimension".to_string(),
        _ => format!("{}, {} dimension(s)", idx_type_name(code), dims),
    }
}

fn magic_hint(role: FileRole, found: u32, expected: u32) -> String {
    match (found, expected) {
        (LABELS_MAGIC, IMAGES_MAGIC) => format!(
            "; this is a labels file given as {role} — were the images and labels files swapped?"
        ),
        (IMAGES_MAGIC, LABELS_MAGIC) => format!(
            "; this is an images file given as {role} — were the images and labels files swapped?"
        ),
        _ => format!("; the file holds {}", magic_kind(found)),
    }
}
