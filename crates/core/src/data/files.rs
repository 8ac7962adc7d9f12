//! The four MNIST files ([`FileRole`]: names, train or test) and the datasets bundled with the
//! page ([`BundledDataset`]). Knows no bytes: parsing is `idx`'s.

use std::fmt;

/// Which of the four MNIST files a byte buffer is meant to be (used in error messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileRole {
    TrainImages,
    TrainLabels,
    TestImages,
    TestLabels,
}

impl FileRole {
    /// All four roles, train before test, images before labels.
    pub const ALL: [FileRole; 4] = [
        FileRole::TrainImages,
        FileRole::TrainLabels,
        FileRole::TestImages,
        FileRole::TestLabels,
    ];

    /// The standard (gzipped) file name, e.g. `train-images-idx3-ubyte.gz`.
    pub fn file_name(self) -> &'static str {
        match self {
            FileRole::TrainImages => "train-images-idx3-ubyte.gz",
            FileRole::TrainLabels => "train-labels-idx1-ubyte.gz",
            FileRole::TestImages => "t10k-images-idx3-ubyte.gz",
            FileRole::TestLabels => "t10k-labels-idx1-ubyte.gz",
        }
    }

    /// The standard file name without `.gz`, e.g. `train-images-idx3-ubyte`.
    pub fn plain_file_name(self) -> &'static str {
        let name = self.file_name();
        &name[..name.len() - 3]
    }

    /// `true` for the two image files.
    pub fn is_images(self) -> bool {
        matches!(self, FileRole::TrainImages | FileRole::TestImages)
    }

    /// Train or test.
    pub fn part(self) -> Part {
        match self {
            FileRole::TrainImages | FileRole::TrainLabels => Part::Train,
            FileRole::TestImages | FileRole::TestLabels => Part::Test,
        }
    }
}

impl fmt::Display for FileRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileRole::TrainImages => "train images",
            FileRole::TrainLabels => "train labels",
            FileRole::TestImages => "test images",
            FileRole::TestLabels => "test labels",
        })
    }
}

/// Train or test half of a [`Split`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    Train,
    Test,
}

impl Part {
    pub fn images_role(self) -> FileRole {
        match self {
            Part::Train => FileRole::TrainImages,
            Part::Test => FileRole::TestImages,
        }
    }

    pub fn labels_role(self) -> FileRole {
        match self {
            Part::Train => FileRole::TrainLabels,
            Part::Test => FileRole::TestLabels,
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Train => "train",
            Part::Test => "test",
        })
    }
}

/// Recognises an MNIST file name: the standard names with or without `.gz`
/// (`train-images-idx3-ubyte[.gz]`) and the common dotted spelling (`train-images.idx3-ubyte[.gz]`),
/// case-insensitively. A leading directory (`/` or `\` separated) is ignored.
pub fn role_from_file_name(name: &str) -> Option<FileRole> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    let lower = base.to_ascii_lowercase();
    let stem = lower.strip_suffix(".gz").unwrap_or(&lower);
    FileRole::ALL.into_iter().find(|role| {
        let plain = role.plain_file_name();
        // "train-images-idx3-ubyte" -> "train-images.idx3-ubyte"
        let dotted = plain.replacen("-idx", ".idx", 1);
        stem == plain || stem == dotted
    })
}

// ---------------------------------------------------------------------------------------------
// Bundled datasets
// ---------------------------------------------------------------------------------------------

/// The datasets shipped with the app under `www/data/<dir_name>/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BundledDataset {
    /// 10,000 real MNIST digits (8,000 train / 2,000 test).
    Mnist,
    /// Zalando's Fashion-MNIST (60,000 train / 10,000 test).
    Fashion,
}

names!(BundledDataset, "dataset", {
    Mnist => "mnist",
    Fashion => "fashion" | "fashion-mnist" | "fashion_mnist" | "fashionmnist",
});

impl BundledDataset {
    /// Folder under `www/data/`: `"mnist"` or `"fashion-mnist"`.
    pub fn dir_name(self) -> &'static str {
        match self {
            BundledDataset::Mnist => "mnist",
            BundledDataset::Fashion => "fashion-mnist",
        }
    }

    /// Human-readable name: `"MNIST"` or `"Fashion-MNIST"`.
    pub fn display_name(self) -> &'static str {
        match self {
            BundledDataset::Mnist => "MNIST",
            BundledDataset::Fashion => "Fashion-MNIST",
        }
    }

    /// Relative URL/path of one of its files, e.g. `data/mnist/train-images-idx3-ubyte.gz`.
    pub fn file_path(self, role: FileRole) -> String {
        format!("data/{}/{}", self.dir_name(), role.file_name())
    }

    /// Legend entries for labels 0..=9.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            BundledDataset::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            BundledDataset::Fashion => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }
}
