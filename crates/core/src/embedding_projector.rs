//! Everything the TensorFlow Embedding Projector needs, in one download: `vecs.tsv` and
//! `meta.tsv` (as [`crate::export`] writes them), `sprite.png` (the images in a square grid of
//! one cell each, white on black as the Projector shows them), `projector_config.json` (the
//! standalone Projector's format) and a README on how to open them, zipped; and a 2-D layout as
//! TSV (`projection.tsv`: a `#` line naming the method and its parameters, then `x<TAB>y` per
//! point). Bytes in, bytes out: knows no browser, no terminal, no file system.

use std::io::Write;

use crate::data::Dataset;
use crate::export::{ExportError, write_meta_tsv, write_vecs_tsv};

/// Largest side of a sprite sheet the Projector takes, in pixels.
pub const SPRITE_MAX_SIDE: usize = 8192;

/// The file names inside the bundle, in its order.
pub const BUNDLE_FILES: [&str; 5] = [
    "vecs.tsv",
    "meta.tsv",
    "sprite.png",
    "projector_config.json",
    "README.txt",
];

/// A bundle could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// The vectors and images do not describe the same points.
    #[error("{vectors} vectors for {images} images: one vector per image")]
    Counts {
        /// Rows of vectors.
        vectors: usize,
        /// Images.
        images: usize,
    },
    /// Nothing to export.
    #[error("there are no points to export")]
    Empty,
    /// Images larger than a sprite sheet.
    #[error("images of {0} pixels a side do not fit a sprite sheet")]
    ImageTooLarge(usize),
    /// Writing the TSV files failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Encoding the PNG failed.
    #[error("sprite.png: {0}")]
    Png(String),
    /// Writing the zip failed.
    #[error("projector.zip: {0}")]
    Zip(String),
}

/// Which points a sprite of `side`-pixel cells can show: all of them, or, when more than
/// `(SPRITE_MAX_SIDE / side)²` cells would be needed, that many evenly spaced ones.
pub fn sprite_points(n: usize, side: usize) -> Vec<usize> {
    let per_side = SPRITE_MAX_SIDE / side.max(1);
    let cap = per_side * per_side;
    if n <= cap {
        (0..n).collect()
    } else {
        (0..cap).map(|k| k * n / cap).collect()
    }
}

/// The sprite sheet of `points` of `images`: a square grid, `ceil(√n)` cells a side, filled
/// row by row in the points' order, unused cells black; 8-bit greyscale PNG.
pub fn sprite_png(images: &Dataset, points: &[usize]) -> Result<Vec<u8>, ProjectorError> {
    let (rows, cols) = (images.rows, images.cols);
    if rows.max(cols) > SPRITE_MAX_SIDE {
        return Err(ProjectorError::ImageTooLarge(rows.max(cols)));
    }
    let grid = grid_side(points.len());
    let (width, height) = (grid * cols, grid * rows);
    let mut pixels = vec![0u8; width * height];
    for (cell, &i) in points.iter().enumerate() {
        let (gy, gx) = (cell / grid, cell % grid);
        for (r, line) in images.image(i).chunks_exact(cols).enumerate() {
            let at = (gy * rows + r) * width + gx * cols;
            pixels[at..at + cols].copy_from_slice(line);
        }
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width as u32, height as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let error = |e: png::EncodingError| ProjectorError::Png(e.to_string());
    encoder
        .write_header()
        .map_err(error)?
        .write_image_data(&pixels)
        .map_err(error)?;
    Ok(png)
}

/// Cells per side of the grid for `n` points.
pub fn grid_side(n: usize) -> usize {
    let mut side = (n as f64).sqrt() as usize;
    while side * side < n {
        side += 1;
    }
    side.max(1)
}

/// `projector_config.json` for `points` vectors of `dim` values with sprite cells of
/// `rows × cols` pixels, naming the bundle's files.
pub fn config_json(name: &str, points: usize, dim: usize, rows: usize, cols: usize) -> String {
    let config = serde_json::json!({
        "embeddings": [{
            "tensorName": name,
            "tensorShape": [points, dim],
            "tensorPath": "vecs.tsv",
            "metadataPath": "meta.tsv",
            "sprite": {
                "imagePath": "sprite.png",
                "singleImageDim": [cols, rows],
            },
        }],
    });
    serde_json::to_string_pretty(&config).expect("a JSON value")
}

/// The bundle's README: what is inside and how to open it.
fn readme(name: &str, points: usize, total: usize) -> String {
    let sample = if points < total {
        format!(
            "These are {points} of the {total} test points, evenly spaced: a sprite sheet holds at \
             most {SPRITE_MAX_SIDE} pixels a side, so the vectors and labels were subsampled \
             with the images.\n\n"
        )
    } else {
        String::new()
    };
    format!(
        "{name}: {points} test embeddings for the TensorFlow Embedding Projector.\n\n{sample}\
         vecs.tsv               one embedding per line (tab-separated)\n\
         meta.tsv               its label, one per line\n\
         sprite.png             the images, one cell per point, row by row\n\
         projector_config.json  names the three files for the standalone Projector\n\n\
         To open: on https://projector.tensorflow.org press Load and choose vecs.tsv, then \
         meta.tsv (points and labels). For the images too, serve this folder over HTTP with CORS \
         allowed and open https://projector.tensorflow.org/?config=URL where URL is the address of \
         projector_config.json; or put the four files in a TensorBoard log directory.\n"
    )
}

/// The zipped bundle of `vectors` (rows of `dim`) and the `images` they embed, with their
/// labels (one vector per image), subsampled as [`sprite_points`] says; returns the zip and the
/// number of points it holds.
pub fn bundle(
    name: &str,
    vectors: &[f32],
    dim: usize,
    images: &Dataset,
) -> Result<(Vec<u8>, usize), ProjectorError> {
    let (n, labels) = (images.len(), &images.labels);
    if dim == 0 || vectors.len() != n * dim {
        return Err(ProjectorError::Counts {
            vectors: vectors.len() / dim.max(1),
            images: n,
        });
    }
    if n == 0 {
        return Err(ProjectorError::Empty);
    }
    let points = sprite_points(n, images.rows.max(images.cols));
    let picked: Vec<f32> = points
        .iter()
        .flat_map(|&i| vectors[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    let picked_labels: Vec<u8> = points.iter().map(|&i| labels[i]).collect();
    let mut vecs = Vec::new();
    write_vecs_tsv(&mut vecs, &picked, dim)?;
    let mut meta = Vec::new();
    write_meta_tsv(&mut meta, &picked_labels)?;
    let files: [(&str, Vec<u8>); 5] = [
        ("vecs.tsv", vecs),
        ("meta.tsv", meta),
        ("sprite.png", sprite_png(images, &points)?),
        (
            "projector_config.json",
            config_json(name, points.len(), dim, images.rows, images.cols).into_bytes(),
        ),
        ("README.txt", readme(name, points.len(), n).into_bytes()),
    ];
    let zip_error = |e: &dyn std::fmt::Display| ProjectorError::Zip(e.to_string());
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (file, bytes) in files {
        zip.start_file(file, options).map_err(|e| zip_error(&e))?;
        zip.write_all(&bytes).map_err(|e| zip_error(&e))?;
    }
    let cursor = zip.finish().map_err(|e| zip_error(&e))?;
    Ok((cursor.into_inner(), points.len()))
}

/// A 2-D layout as `projection.tsv`: `# <header>`, then `x<TAB>y` per point, in order.
pub fn layout_tsv(header: &str, layout: &[[f32; 2]]) -> String {
    let mut out = format!("# {header}\n");
    for [x, y] in layout {
        out.push_str(&format!("{x}\t{y}\n"));
    }
    out
}

#[cfg(test)]
mod tests;
