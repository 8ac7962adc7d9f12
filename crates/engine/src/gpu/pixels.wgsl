// Input images (binding 0) and conv1's zero padding beyond the bottom/right edge: prepended to
// the kernels that read pixels.
@group(0) @binding(0) var<storage, read_write> pixels: array<f32>;

fn pixel(base: u32, y: u32, x: u32) -> f32 {
    if (y < SIDE && x < SIDE) {
        return pixels[base + y * SIDE + x];
    }
    return 0.0;
}
