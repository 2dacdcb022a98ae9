//! Real JPEG photos and PNG graphics from generated pixels.

use rand::RngExt;

use super::words::Rng;

/// Photo-like RGB pixels: a diagonal colour gradient, a few soft blobs and
/// sensor-like noise, so JPEGs land at realistic sizes.
pub fn photo(rng: &mut Rng, w: usize, h: usize) -> Vec<u8> {
    let noise = rng.random_range(6..22u32);
    draw(rng, w, h, noise)
}

/// Graphic-like pixels (screenshots, diagrams): the same scene with little
/// noise, which PNG compresses well.
pub fn graphic(rng: &mut Rng, w: usize, h: usize) -> Vec<u8> {
    draw(rng, w, h, 2)
}

fn draw(rng: &mut Rng, w: usize, h: usize, noise: u32) -> Vec<u8> {
    let from: [i32; 3] = [rng.random_range(0..256), rng.random_range(0..256), rng.random_range(0..256)];
    let to: [i32; 3] = [rng.random_range(0..256), rng.random_range(0..256), rng.random_range(0..256)];
    // Gradient along x + y in 16.16 fixed point: one addition per channel and pixel.
    let span = (w + h).max(1) as i32;
    let step: [i32; 3] = std::array::from_fn(|c| ((to[c] - from[c]) << 16) / span);
    let mut state: u32 = rng.random::<u32>() | 1;
    let mut out = vec![0u8; w * h * 3];
    for (y, row) in out.chunks_exact_mut(w * 3).enumerate() {
        let mut v: [i32; 3] = std::array::from_fn(|c| (from[c] << 16) + step[c] * y as i32);
        for px in row.chunks_exact_mut(3) {
            // xorshift32 luminance noise, the same on all three channels.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let n = (state % (2 * noise + 1)) as i32 - noise as i32;
            px[0] = ((v[0] >> 16) + n).clamp(0, 255) as u8;
            px[1] = ((v[1] >> 16) + n).clamp(0, 255) as u8;
            px[2] = ((v[2] >> 16) + n).clamp(0, 255) as u8;
            v[0] += step[0];
            v[1] += step[1];
            v[2] += step[2];
        }
    }
    // Soft discs blended over the gradient, drawn row span by row span.
    for _ in 0..rng.random_range(1..6) {
        let r = rng.random_range(10..(w.min(h) as i64 / 2).max(11));
        let colour: [u8; 3] = rng.random();
        let (cx, cy) = (rng.random_range(0..w as i64), rng.random_range(0..h as i64));
        for y in (cy - r).max(0)..(cy + r).min(h as i64) {
            let half = ((r * r - (y - cy) * (y - cy)) as f64).sqrt() as i64;
            let (x0, x1) = ((cx - half).max(0) as usize, (cx + half).min(w as i64) as usize);
            let row = &mut out[y as usize * w * 3..][x0 * 3..x1 * 3];
            for px in row.chunks_exact_mut(3) {
                px[0] = ((u16::from(px[0]) + u16::from(colour[0])) / 2) as u8;
                px[1] = ((u16::from(px[1]) + u16::from(colour[1])) / 2) as u8;
                px[2] = ((u16::from(px[2]) + u16::from(colour[2])) / 2) as u8;
            }
        }
    }
    out
}
