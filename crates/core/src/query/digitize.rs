//! A drawing made MNIST-style, as the MNIST digits were made (LeCun et al.): the ink's bounding
//! box scaled (keeping its aspect) to fit a 20 × 20 box with area-averaging, which gives the
//! anti-aliased grey edges, then placed in a 28 × 28 field so that its centre of mass is at the
//! centre. Plain data: the page hands in the pad's pixels.

/// The image side.
pub const SIDE: usize = 28;
/// The side of the box the ink is scaled into.
pub const BOX: usize = 20;
/// Ink below this (of 255) is paper.
const INK: u8 = 16;

/// `SIDE × SIDE` pixels (0 background, 255 full ink) from `ink` (`width × height`, row-major,
/// 0 = no ink); `None` when there is no ink or the sizes disagree.
pub fn mnist_style(ink: &[u8], width: usize, height: usize) -> Option<Vec<u8>> {
    if width == 0 || height == 0 || ink.len() != width * height {
        return None;
    }
    // The ink's bounding box.
    let (mut x0, mut x1, mut y0, mut y1) = (usize::MAX, 0, usize::MAX, 0);
    for (i, &v) in ink.iter().enumerate() {
        if v >= INK {
            let (x, y) = (i % width, i / width);
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
    }
    if x0 > x1 {
        return None;
    }
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let scale = BOX as f64 / bw.max(bh) as f64;
    let (ow, oh) = (
        ((bw as f64 * scale).round() as usize).clamp(1, BOX),
        ((bh as f64 * scale).round() as usize).clamp(1, BOX),
    );
    // Area-averaging, separably: each output pixel is the mean of the source area it covers.
    let wx = coverage(ow, bw);
    let wy = coverage(oh, bh);
    let mut small = vec![0f64; ow * oh];
    for (oy, ys) in wy.iter().enumerate() {
        for (ox, xs) in wx.iter().enumerate() {
            let mut sum = 0.0;
            for &(y, w_y) in ys {
                let row = &ink[(y0 + y) * width + x0..];
                sum += w_y
                    * xs.iter()
                        .map(|&(x, w_x)| w_x * f64::from(row[x]))
                        .sum::<f64>();
            }
            small[oy * ow + ox] = sum;
        }
    }
    // Full ink is 255, as in MNIST.
    let peak = small.iter().copied().fold(0.0, f64::max);
    if peak <= 0.0 {
        return None;
    }
    small.iter_mut().for_each(|v| *v *= 255.0 / peak);
    // Centre of mass to the field's centre.
    let mass: f64 = small.iter().sum();
    let (mut cx, mut cy) = (0.0, 0.0);
    for (i, &v) in small.iter().enumerate() {
        cx += v * ((i % ow) as f64 + 0.5);
        cy += v * ((i / ow) as f64 + 0.5);
    }
    let half = SIDE as f64 / 2.0;
    let dx = (half - cx / mass).round() as isize;
    let dy = (half - cy / mass).round() as isize;
    let mut out = vec![0u8; SIDE * SIDE];
    for (i, &v) in small.iter().enumerate() {
        let (x, y) = ((i % ow) as isize + dx, (i / ow) as isize + dy);
        if (0..SIDE as isize).contains(&x) && (0..SIDE as isize).contains(&y) {
            out[y as usize * SIDE + x as usize] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    Some(out)
}

/// For each of `n_out` output pixels along an axis of `n_in` source pixels: the source pixels it
/// covers and the share of it each one takes (summing to 1).
fn coverage(n_out: usize, n_in: usize) -> Vec<Vec<(usize, f64)>> {
    let step = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|o| {
            let (a, b) = (o as f64 * step, (o + 1) as f64 * step);
            let mut out = Vec::new();
            let mut s = a.floor() as usize;
            while (s as f64) < b && s < n_in {
                let part = (b.min(s as f64 + 1.0) - a.max(s as f64)).max(0.0);
                if part > 0.0 {
                    out.push((s, part / step));
                }
                s += 1;
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `w × h` canvas with a filled rectangle of ink.
    fn canvas(w: usize, h: usize, rect: (usize, usize, usize, usize)) -> Vec<u8> {
        let (x0, y0, x1, y1) = rect;
        (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                    255
                } else {
                    0
                }
            })
            .collect()
    }

    fn extent(img: &[u8]) -> (usize, usize, usize, usize) {
        let on: Vec<(usize, usize)> = (0..img.len())
            .filter(|&i| img[i] > 0)
            .map(|i| (i % SIDE, i / SIDE))
            .collect();
        let xs = on.iter().map(|p| p.0);
        let ys = on.iter().map(|p| p.1);
        (
            xs.clone().min().unwrap(),
            xs.max().unwrap(),
            ys.clone().min().unwrap(),
            ys.max().unwrap(),
        )
    }

    #[test]
    fn a_stroke_anywhere_becomes_a_centred_20_pixel_digit() {
        // A tall bar in a corner of a 280 × 280 pad: 40 wide, 200 high.
        let img = mnist_style(&canvas(280, 280, (10, 60, 50, 260)), 280, 280).unwrap();
        assert_eq!(img.len(), SIDE * SIDE);
        let (x0, x1, y0, y1) = extent(&img);
        assert_eq!((y1 - y0 + 1, x1 - x0 + 1), (20, 4), "20 high, aspect kept");
        assert_eq!((y0, x0), (4, 12), "centred by mass");
        assert_eq!(*img.iter().max().unwrap(), 255);
        // Wherever it was drawn, the same image.
        let moved = mnist_style(&canvas(280, 280, (200, 10, 240, 210)), 280, 280).unwrap();
        assert_eq!(moved, img);
    }

    #[test]
    fn edges_that_cut_a_pixel_are_grey() {
        // Ink in columns 0..30 of a 45 × 45 box (a dot at the far corner makes the box): 45
        // source columns become 20, so the ink's 30 become 13⅓, the last of them a third grey.
        let mut ink = canvas(45, 45, (0, 0, 30, 45));
        ink[44] = 255;
        let img = mnist_style(&ink, 45, 45).unwrap();
        let row: Vec<u8> = img[14 * SIDE..15 * SIDE].to_vec();
        assert_eq!(row.iter().filter(|&&v| v == 255).count(), 13, "{row:?}");
        let greys: Vec<u8> = row.iter().copied().filter(|&v| v > 0 && v < 255).collect();
        assert_eq!(greys.len(), 1, "{row:?}");
        assert!((i32::from(greys[0]) - 85).abs() <= 1, "{greys:?}");
    }

    #[test]
    fn no_ink_or_wrong_sizes_give_nothing() {
        assert_eq!(mnist_style(&[0; 100], 10, 10), None);
        assert_eq!(
            mnist_style(&[10; 100], 10, 10),
            None,
            "below the ink threshold"
        );
        assert_eq!(mnist_style(&[255; 99], 10, 10), None);
        assert_eq!(mnist_style(&[], 0, 0), None);
        // A single dot becomes a small blob in the middle, not a 20-pixel square of nothing.
        let mut dot = vec![0u8; 100];
        dot[55] = 255;
        let img = mnist_style(&dot, 10, 10).unwrap();
        assert_eq!(img.iter().filter(|&&v| v > 0).count(), 400);
    }
}
