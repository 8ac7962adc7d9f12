//! The bundle against the images and vectors it was made from.

use std::io::Read;

use super::*;
use crate::export::{meta_tsv_string, vecs_tsv_string};

/// `n` 28×28 images, image `i` filled with the value `i + 1` except a bright pixel at (i, i).
fn images(n: usize) -> Dataset {
    let mut pixels = Vec::with_capacity(n * 784);
    for i in 0..n {
        let mut image = vec![(i + 1) as u8; 784];
        image[(i % 28) * 28 + i % 28] = 255;
        pixels.extend(image);
    }
    Dataset {
        images: pixels,
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
        rows: 28,
        cols: 28,
    }
}

fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn the_sprite_holds_each_image_in_its_cell() {
    let set = images(10);
    let (w, h, pixels) = decode(&sprite_png(&set, &(0..10).collect::<Vec<_>>()).unwrap());
    // 10 points: a 4×4 grid of 28-pixel cells.
    assert_eq!((w, h), (112, 112));
    for i in 0..10 {
        let (gy, gx) = (i / 4, i % 4);
        for r in 0..28 {
            let at = (gy * 28 + r) * 112 + gx * 28;
            assert_eq!(
                &pixels[at..at + 28],
                &set.image(i)[r * 28..(r + 1) * 28],
                "cell {i}"
            );
        }
    }
    // Cells past the last point stay black.
    let last_row = (3 * 28) * 112 + 2 * 28;
    assert!(pixels[last_row..last_row + 56].iter().all(|&p| p == 0));
}

#[test]
fn more_points_than_cells_are_subsampled_evenly() {
    assert_eq!(sprite_points(5, 28), [0, 1, 2, 3, 4]);
    let cap = (SPRITE_MAX_SIDE / 28).pow(2);
    assert_eq!(cap, 292 * 292);
    assert_eq!(sprite_points(cap, 28).len(), cap);
    let picked = sprite_points(100_000, 28);
    assert_eq!(picked.len(), cap);
    assert_eq!(picked[0], 0);
    assert!(picked.windows(2).all(|w| w[1] > w[0] && w[1] - w[0] <= 2));
    assert!(*picked.last().unwrap() < 100_000);
    assert_eq!(grid_side(cap) * 28, 8176);
    assert_eq!([grid_side(1), grid_side(4), grid_side(5)], [1, 2, 3]);
}

#[test]
fn the_bundle_holds_the_projectors_files_and_nothing_else() {
    let set = images(12);
    let vectors: Vec<f32> = (0..12 * 3).map(|v| v as f32 / 10.0).collect();
    let (zip_bytes, points) = bundle("tripletlab", &vectors, 3, &set).unwrap();
    assert_eq!(points, 12);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    assert_eq!(names, BUNDLE_FILES);
    let mut read = |name: &str| {
        let mut out = Vec::new();
        archive
            .by_name(name)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    assert_eq!(
        read("vecs.tsv"),
        vecs_tsv_string(&vectors, 3).unwrap().into_bytes()
    );
    assert_eq!(read("meta.tsv"), meta_tsv_string(&set.labels).into_bytes());
    let (w, h, _) = decode(&read("sprite.png"));
    assert_eq!((w, h), (4 * 28, 4 * 28));
    let config: serde_json::Value = serde_json::from_slice(&read("projector_config.json")).unwrap();
    let e = &config["embeddings"][0];
    assert_eq!(e["tensorName"], "tripletlab");
    assert_eq!(e["tensorShape"], serde_json::json!([12, 3]));
    assert_eq!(e["tensorPath"], "vecs.tsv");
    assert_eq!(e["metadataPath"], "meta.tsv");
    assert_eq!(e["sprite"]["imagePath"], "sprite.png");
    assert_eq!(e["sprite"]["singleImageDim"], serde_json::json!([28, 28]));
    let readme = String::from_utf8(read("README.txt")).unwrap();
    assert!(readme.contains("projector.tensorflow.org") && !readme.contains("subsampled"));
    // Counts that disagree are an error, not a panic.
    assert!(bundle("x", &vectors[..33], 3, &set).is_err());
    assert!(bundle("x", &vectors, 3, &images(11)).is_err());
    assert!(bundle("x", &[], 3, &images(0)).is_err());
}

#[test]
fn a_layout_is_a_header_then_one_row_per_point() {
    let text = layout_tsv("umap n_neighbors=15", &[[1.5, -2.0], [0.0, 3.25]]);
    assert_eq!(text, "# umap n_neighbors=15\n1.5\t-2\n0\t3.25\n");
}
