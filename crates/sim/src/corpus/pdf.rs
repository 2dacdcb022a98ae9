//! Small but valid PDF files: real object graph, cross-reference table with
//! exact offsets, text pages (half of them with Flate-compressed content).

use rand::RngExt;

use super::words::{self, Lang, Rng};
use super::zlib;

/// Base-14 Helvetica has no Japanese glyphs, so PDF text is English.
pub fn pdf(rng: &mut Rng) -> Vec<u8> {
    let pages = rng.random_range(1..12usize);
    let compress = rng.random_bool(0.5);
    // Objects: 1 catalog, 2 page tree, 3 font, 4 info, then (page, content) pairs.
    let first_page = 5;
    let mut objects: Vec<Vec<u8>> = Vec::new();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    let kids: Vec<String> = (0..pages).map(|p| format!("{} 0 R", first_page + 2 * p)).collect();
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {pages} >>", kids.join(" ")).into_bytes());
    objects.push(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec());
    objects.push(
        format!("<< /Title ({}) /Author ({}) /Producer (mamori corpus) >>", words::date(rng), author(rng)).into_bytes(),
    );
    for p in 0..pages {
        let contents = first_page + 2 * p + 1;
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents {contents} 0 R >>"
            )
            .into_bytes(),
        );
        objects.push(content_stream(rng, compress));
    }

    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R /Info 4 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1)
            .as_bytes(),
    );
    out
}

fn author(rng: &mut Rng) -> String {
    const AUTHORS: [&str; 4] = ["Finance", "Legal", "Operations", "Sales"];
    AUTHORS[rng.random_range(0..AUTHORS.len())].to_owned()
}

fn content_stream(rng: &mut Rng, compress: bool) -> Vec<u8> {
    let mut text = String::from("BT\n/F1 11 Tf\n14 TL\n50 790 Td\n");
    for _ in 0..rng.random_range(10..52) {
        let mut line = String::new();
        words::sentence(rng, Lang::En, &mut line);
        text.push_str(&format!("({}) Tj T*\n", line.trim_end()));
    }
    text.push_str("ET\n");
    let (data, filter) =
        if compress { (zlib(text.as_bytes()), " /Filter /FlateDecode") } else { (text.into_bytes(), "") };
    let mut obj = format!("<< /Length {}{filter} >>\nstream\n", data.len()).into_bytes();
    obj.extend_from_slice(&data);
    obj.extend_from_slice(b"\nendstream");
    obj
}
