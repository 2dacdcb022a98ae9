//! OOXML packages (docx, xlsx) that office suites and format sniffers accept.

use std::io::{Cursor, Write};

use rand::RngExt;
use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::words::{self, xml_escape, Lang, Rng};

const XML_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;
const REL_NS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
const OFFICE_DOC_REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument";

/// A Word document of `lang` prose, optionally carrying a picture part the
/// way documents with pasted photos do.
pub fn docx(rng: &mut Rng, lang: Lang, picture: Option<&[u8]>) -> Result<Vec<u8>, ZipError> {
    let mut body = String::new();
    body.push_str(&format!(
        r#"{XML_HEAD}<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#
    ));
    for _ in 0..rng.random_range(5..120) {
        body.push_str(r#"<w:p><w:r><w:t xml:space="preserve">"#);
        body.push_str(&xml_escape(&words::paragraph(rng, lang)));
        body.push_str("</w:t></w:r></w:p>");
    }
    body.push_str("</w:body></w:document>");

    let mut types = String::from(concat!(
        r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">"#,
        r#"<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>"#,
        r#"<Default Extension="xml" ContentType="application/xml"/>"#,
        r#"<Override PartName="/word/document.xml" "#,
        r#"ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>"#,
    ));
    if picture.is_some() {
        types.push_str(r#"<Default Extension="jpeg" ContentType="image/jpeg"/>"#);
    }
    types.push_str("</Types>");

    let mut parts = vec![
        ("[Content_Types].xml", format!("{XML_HEAD}{types}").into_bytes()),
        ("_rels/.rels", package_rels("word/document.xml").into_bytes()),
        ("word/document.xml", body.into_bytes()),
    ];
    if let Some(jpeg) = picture {
        let rels = format!(
            r#"{XML_HEAD}<Relationships xmlns="{REL_NS}"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="media/image1.jpeg"/></Relationships>"#
        );
        parts.push(("word/_rels/document.xml.rels", rels.into_bytes()));
        parts.push(("word/media/image1.jpeg", jpeg.to_vec()));
    }
    package(&parts)
}

/// A spreadsheet of names, dates and amounts, with inline strings so it
/// needs no shared-strings part.
pub fn xlsx(rng: &mut Rng) -> Result<Vec<u8>, ZipError> {
    const HEADERS: [&str; 6] = ["日付", "担当者", "品目", "数量", "単価", "金額"];
    const ITEMS: [&str; 8] =
        ["コピー用紙", "Toner cartridge", "ノートPC", "会議室利用", "Licence", "出張費", "保守契約", "Coffee"];
    let mut sheet = format!(
        r#"{XML_HEAD}<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#
    );
    sheet.push_str(r#"<row r="1">"#);
    for (col, h) in HEADERS.iter().enumerate() {
        sheet.push_str(&inline_cell(col, 1, h));
    }
    sheet.push_str("</row>");
    for row in 2..rng.random_range(20..1500u32) {
        let qty: u32 = rng.random_range(1..50);
        let price: u32 = rng.random_range(100..200_000);
        sheet.push_str(&format!(r#"<row r="{row}">"#));
        sheet.push_str(&inline_cell(0, row, &words::date(rng)));
        sheet.push_str(&inline_cell(1, row, &words::person(rng)));
        sheet.push_str(&inline_cell(2, row, ITEMS[rng.random_range(0..ITEMS.len())]));
        for (col, n) in [(3, u64::from(qty)), (4, u64::from(price)), (5, u64::from(qty) * u64::from(price))] {
            sheet.push_str(&format!(r#"<c r="{}{row}"><v>{n}</v></c>"#, column(col)));
        }
        sheet.push_str("</row>");
    }
    sheet.push_str("</sheetData></worksheet>");

    let types = format!(
        concat!(
            "{}",
            r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">"#,
            r#"<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>"#,
            r#"<Default Extension="xml" ContentType="application/xml"/>"#,
            r#"<Override PartName="/xl/workbook.xml" "#,
            r#"ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>"#,
            r#"<Override PartName="/xl/worksheets/sheet1.xml" "#,
            r#"ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#,
            "</Types>"
        ),
        XML_HEAD
    );
    let workbook = format!(
        r#"{XML_HEAD}<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#
    );
    let workbook_rels = format!(
        r#"{XML_HEAD}<Relationships xmlns="{REL_NS}"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#
    );
    package(&[
        ("[Content_Types].xml", types.into_bytes()),
        ("_rels/.rels", package_rels("xl/workbook.xml").into_bytes()),
        ("xl/workbook.xml", workbook.into_bytes()),
        ("xl/_rels/workbook.xml.rels", workbook_rels.into_bytes()),
        ("xl/worksheets/sheet1.xml", sheet.into_bytes()),
    ])
}

fn package_rels(main: &str) -> String {
    format!(
        r#"{XML_HEAD}<Relationships xmlns="{REL_NS}"><Relationship Id="rId1" Type="{OFFICE_DOC_REL}" Target="{main}"/></Relationships>"#
    )
}

fn inline_cell(col: usize, row: u32, text: &str) -> String {
    format!(r#"<c r="{}{row}" t="inlineStr"><is><t>{}</t></is></c>"#, column(col), xml_escape(text))
}

fn column(col: usize) -> char {
    char::from(b'A' + col as u8)
}

fn package(parts: &[(&str, Vec<u8>)]) -> Result<Vec<u8>, ZipError> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in parts {
        // Pictures are already compressed; office suites store them as is.
        let method = if name.ends_with(".jpeg") { CompressionMethod::Stored } else { CompressionMethod::Deflated };
        zip.start_file(*name, SimpleFileOptions::default().compression_method(method))?;
        zip.write_all(data)?;
    }
    Ok(zip.finish()?.into_inner())
}
