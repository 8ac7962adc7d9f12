//! [`Dataset`] (images and labels of one part) and [`Split`] (train and test), and the loaders
//! shared by the page's files, the bundled data and the CLI's folder ([`load_dir`], native).

use std::fmt;

use super::*;

/// Images and labels of one part (train or test). `images.len() == len() * rows * cols`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Dataset {
    /// `len() * rows * cols` pixels, row-major, image after image.
    pub images: Vec<u8>,
    /// One label per image, `0..=9`.
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Dataset {{ len: {}, rows: {}, cols: {} }}",
            self.len(),
            self.rows,
            self.cols
        )
    }
}

impl Dataset {
    /// Joins parsed images and labels, checking that the counts agree.
    pub fn from_parts(
        images: IdxImages,
        labels: Vec<u8>,
        part: Part,
    ) -> Result<Dataset, DataError> {
        if images.count != labels.len() {
            return Err(DataError::CountMismatch {
                part,
                images: images.count,
                labels: labels.len(),
            });
        }
        Ok(Dataset {
            images: images.pixels,
            labels,
            rows: images.rows,
            cols: images.cols,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The labels as the metrics take them.
    pub fn labels_u32(&self) -> Vec<u32> {
        self.labels.iter().map(|&l| u32::from(l)).collect()
    }

    /// Pixels per image (`rows * cols`).
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of example `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// The first `limit` examples (all of them if `limit >= len()`).
    pub fn truncated(&self, limit: usize) -> Dataset {
        let n = limit.min(self.len());
        let pixels = (n * self.image_len()).min(self.images.len());
        Dataset {
            images: self.images[..pixels].to_vec(),
            labels: self.labels[..n].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// The examples at `indices`, in that order.
    ///
    /// # Panics
    /// If an index is `>= self.len()`.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        Dataset {
            images: indices
                .iter()
                .flat_map(|&i| self.image(i))
                .copied()
                .collect(),
            labels: self.labels_of(indices),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// Clears `out` and writes the selected images into it contiguously (`indices.len() * rows *
    /// cols` values), each pixel as `x as f32 / 255.0` — exactly Keras' `x / 255.0` in float32.
    ///
    /// # Panics
    /// If an index is `>= self.len()`.
    pub fn pixels_f32(&self, indices: &[usize], out: &mut Vec<f32>) {
        out.clear();
        out.reserve(indices.len() * self.image_len());
        for &i in indices {
            out.extend(self.image(i).iter().map(|&x| x as f32 / 255.0));
        }
    }

    /// Labels of the selected examples.
    ///
    /// # Panics
    /// If an index is `>= self.len()`.
    pub fn labels_of(&self, indices: &[usize]) -> Vec<u8> {
        indices.iter().map(|&i| self.labels[i]).collect()
    }

    /// Number of examples per class (labels ≥ 10, impossible after parsing, are not counted).
    pub fn class_counts(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0; NUM_CLASSES];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }
}

/// Train and test datasets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
}

/// Parses one part from its images and labels files.
pub fn load_dataset(images: &[u8], labels: &[u8], part: Part) -> Result<Dataset, DataError> {
    let images = parse_images(images, part.images_role())?;
    let labels = parse_labels(labels, part.labels_role())?;
    Dataset::from_parts(images, labels, part)
}

/// Parses the four MNIST-format files (each gzipped or plain) into a train/test split. This is the
/// one loader behind the browser's file picker, the bundled-data fetch and the native CLI.
pub fn load_split(
    train_images: &[u8],
    train_labels: &[u8],
    test_images: &[u8],
    test_labels: &[u8],
) -> Result<Split, DataError> {
    Ok(Split {
        train: load_dataset(train_images, train_labels, Part::Train)?,
        test: load_dataset(test_images, test_labels, Part::Test)?,
    })
}

/// Loads a split from named files (e.g. the four files of the browser's "Open IDX files…"): each
/// is assigned a role by [`role_from_file_name`]; files with unrecognised names are ignored.
/// Errors with [`DataError::Missing`] if a role has no file and [`DataError::Duplicate`] if one
/// has two.
pub fn load_named_files(files: &[(&str, &[u8])]) -> Result<Split, DataError> {
    let mut slots: [Option<(&str, &[u8])>; 4] = [None; 4];
    for &(name, bytes) in files {
        let Some(role) = role_from_file_name(name) else {
            continue;
        };
        let slot = &mut slots[role as usize];
        if let Some((first, _)) = slot {
            return Err(DataError::Duplicate {
                role,
                first: first.to_string(),
                second: name.to_string(),
            });
        }
        *slot = Some((name, bytes));
    }
    let mut data: [&[u8]; 4] = [&[]; 4];
    for role in FileRole::ALL {
        data[role as usize] = slots[role as usize].ok_or(DataError::Missing { role })?.1;
    }
    load_split(data[0], data[1], data[2], data[3])
}

/// Reads the four files from `dir`, each under its standard name with or without `.gz`, or the
/// dotted spelling (`train-images.idx3-ubyte`). Native only.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_dir(dir: &std::path::Path) -> Result<Split, DataError> {
    if !dir.is_dir() {
        return Err(DataError::Io {
            path: dir.display().to_string(),
            message: "no such directory".to_string(),
        });
    }
    let mut data: [Vec<u8>; 4] = Default::default();
    for role in FileRole::ALL {
        let plain = role.plain_file_name();
        let dotted = plain.replacen("-idx", ".idx", 1);
        let candidates = [
            role.file_name().to_string(),
            plain.to_string(),
            format!("{dotted}.gz"),
            dotted,
        ];
        let path = candidates
            .iter()
            .map(|name| dir.join(name))
            .find(|p| p.is_file())
            .ok_or(DataError::Missing { role })?;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if size > MAX_FILE_BYTES {
            return Err(DataError::TooLarge {
                role,
                size,
                limit: MAX_FILE_BYTES,
            });
        }
        data[role as usize] = std::fs::read(&path).map_err(|e| DataError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    }
    load_split(&data[0], &data[1], &data[2], &data[3])
}
