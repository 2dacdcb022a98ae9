//! A realistic, reproducible victim: office documents, PDFs, photos,
//! notes and spreadsheets in Japanese and English folders, plus disk images.

mod disk;
mod office;
mod pdf;
mod picture;
mod words;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use chacha20::ChaCha8Rng;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use rand::{RngExt, SeedableRng};

use crate::error::SimError;
use crate::target::{check_target, mark_target, MARKER};
use words::{Lang, Rng};

/// Every corpus is the same for the same spec.
const SEED: u64 = 0x6d61_6d6f_7269_0001;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusSpec {
    /// Ordinary files (documents, pictures, text).
    pub docs: usize,
    /// Disk-image-like files of `large_size` bytes each, in `vm/`.
    pub large: usize,
    pub large_size: u64,
}

impl Default for CorpusSpec {
    fn default() -> Self {
        CorpusSpec { docs: 150, large: 2, large_size: 32 << 20 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusSummary {
    pub files: usize,
    /// Folders created below the corpus root.
    pub dirs: usize,
    /// Apparent size of all files (disk images are sparse).
    pub bytes: u64,
}

/// Marks `dir` as a test target and fills it with a corpus.
///
/// Refuses an existing directory that already holds files but no
/// [`MARKER`], so a mistyped path never turns real data into a target.
/// Files of an earlier corpus in a marked directory are overwritten.
pub fn make_corpus(dir: &Path, spec: &CorpusSpec) -> Result<CorpusSummary, SimError> {
    if let Ok(mut entries) = fs::read_dir(dir) {
        if entries.next().is_some() && !dir.join(MARKER).is_file() {
            return Err(SimError::NotEmpty { path: dir.to_path_buf() });
        }
    }
    mark_target(dir)?;
    let root = check_target(dir)?;
    // Disk images first: they are the longest jobs, so the workers finish together.
    let jobs: Vec<Job> = (0..spec.large).map(Job::Disk).chain((0..spec.docs).map(Job::Doc)).collect();
    let next = AtomicUsize::new(0);
    let made = Mutex::new(Vec::with_capacity(jobs.len()));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> Result<(), SimError> {
                    while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let file = job.make(&root, spec)?;
                        made.lock().unwrap_or_else(|e| e.into_inner()).push(file);
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })?;
    let made = made.into_inner().unwrap_or_else(|e| e.into_inner());
    let dirs: BTreeSet<&Path> =
        made.iter().flat_map(|(path, _)| path.ancestors().skip(1).take_while(|a| *a != root)).collect();
    Ok(CorpusSummary { files: made.len(), dirs: dirs.len(), bytes: made.iter().map(|(_, n)| n).sum() })
}

#[derive(Debug, Clone, Copy)]
enum Job {
    Doc(usize),
    Disk(usize),
}

impl Job {
    /// Writes the job's file; returns its path and size. Each job has its own
    /// random stream, so the result does not depend on which worker ran it.
    fn make(self, root: &Path, spec: &CorpusSpec) -> Result<(PathBuf, u64), SimError> {
        match self {
            Job::Doc(i) => {
                let mut rng = rng_for(i as u64);
                let kind = if i < Kind::ALL.len() { Kind::ALL[i] } else { Kind::pick(&mut rng) };
                let path = root.join(kind.place(&mut rng, i));
                let data = kind.generate(&mut rng, &path)?;
                create_parent(&path)?;
                fs::write(&path, &data).map_err(SimError::io(&path))?;
                Ok((path, data.len() as u64))
            }
            Job::Disk(i) => {
                let mut rng = rng_for(u64::MAX - i as u64);
                let path = root.join("vm").join(format!("disk-{i:02}.img"));
                create_parent(&path)?;
                disk::disk_image(&path, spec.large_size, &mut rng).map_err(SimError::io(&path))?;
                Ok((path, spec.large_size))
            }
        }
    }
}

fn rng_for(stream: u64) -> Rng {
    ChaCha8Rng::seed_from_u64(SEED ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn create_parent(path: &Path) -> Result<(), SimError> {
    match path.parent() {
        Some(parent) => fs::create_dir_all(parent).map_err(SimError::io(parent)),
        None => Ok(()),
    }
}

pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::with_capacity(data.len() / 3), Compression::default());
    z.write_all(data).expect("writing into a Vec cannot fail");
    z.finish().expect("writing into a Vec cannot fail")
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Docx,
    Xlsx,
    Pdf,
    Jpg,
    Png,
    Txt,
    Md,
    Csv,
}

impl Kind {
    const ALL: [Kind; 8] = [Kind::Docx, Kind::Xlsx, Kind::Pdf, Kind::Jpg, Kind::Png, Kind::Txt, Kind::Md, Kind::Csv];
    /// Percent of the corpus, in the order of `ALL`.
    const WEIGHTS: [u32; 8] = [20, 13, 15, 14, 8, 12, 8, 10];

    fn pick(rng: &mut Rng) -> Kind {
        let mut roll = rng.random_range(0..Self::WEIGHTS.iter().sum::<u32>());
        for (kind, weight) in Self::ALL.iter().zip(Self::WEIGHTS) {
            if roll < weight {
                return *kind;
            }
            roll -= weight;
        }
        Kind::Txt
    }

    /// A folder and file name the kind would have in a small office. Some
    /// text files are hidden: ransomware takes them too.
    fn place(self, rng: &mut Rng, i: usize) -> String {
        let (folders, names, ext): (&[&str], &[&str], &str) = match self {
            Kind::Docx => (
                &["人事", "projects/alpha", "projects/beta/docs", "shared/契約書", "経理"],
                &["議事録_", "report-", "提案書_", "minutes-", "仕様書_v"],
                "docx",
            ),
            Kind::Xlsx => {
                (&["経理", "経理/2024", "projects/alpha"], &["見積書_", "budget-", "売上_", "timesheet-"], "xlsx")
            }
            Kind::Pdf => (
                &["経理", "shared/契約書", "人事", "projects/beta/docs"],
                &["invoice-", "契約書_", "請求書_", "manual-"],
                "pdf",
            ),
            Kind::Jpg => (&["photos/2023", "photos/2024", "projects/beta/design"], &["IMG_", "DSC0", "写真_"], "jpg"),
            Kind::Png => (
                &["projects/beta/design", "photos/screenshots", "projects/alpha"],
                &["screenshot-", "diagram-", "logo-"],
                "png",
            ),
            Kind::Txt => (&["notes", "projects/alpha", ".", "人事"], &["memo-", "メモ_", "todo-", ".history-"], "txt"),
            Kind::Md => {
                (&["notes", "projects/alpha", "projects/beta"], &["README-", "design-", "議事メモ_", ".notes-"], "md")
            }
            Kind::Csv => (
                &["経理", "経理/2024", "人事", "projects/alpha/data"],
                &["customers-", "社員名簿_", "transactions-", "inventory-"],
                "csv",
            ),
        };
        let folder = folders[rng.random_range(0..folders.len())];
        let name = names[rng.random_range(0..names.len())];
        format!("{folder}/{name}{i:04}.{ext}")
    }

    fn generate(self, rng: &mut Rng, path: &Path) -> Result<Vec<u8>, SimError> {
        Ok(match self {
            Kind::Docx => {
                let picture = if rng.random_bool(0.3) { Some(jpeg(rng, path, 240..480, 180..360)?) } else { None };
                let lang = Lang::pick(rng);
                office::docx(rng, lang, picture.as_deref())
                    .map_err(|source| SimError::Zip { path: path.to_path_buf(), source })?
            }
            Kind::Xlsx => office::xlsx(rng).map_err(|source| SimError::Zip { path: path.to_path_buf(), source })?,
            Kind::Pdf => pdf::pdf(rng),
            Kind::Jpg => jpeg(rng, path, 320..900, 240..640)?,
            Kind::Png => png(rng, path)?,
            Kind::Txt => {
                let len = if rng.random_bool(0.1) { 512 << 10 } else { 48 << 10 };
                let len = rng.random_range(1024..len);
                let lang = Lang::pick(rng);
                words::prose(rng, lang, len).into_bytes()
            }
            Kind::Md => {
                let lang = Lang::pick(rng);
                let mut md = String::new();
                for section in 1..rng.random_range(2..10) {
                    md.push_str(&format!("## {section}. {}\n\n", words::date(rng)));
                    for _ in 0..rng.random_range(1..4) {
                        md.push_str(&format!("- {}\n", words::paragraph(rng, lang)));
                    }
                    md.push('\n');
                    let len = rng.random_range(200..4000);
                    md.push_str(&words::prose(rng, lang, len));
                }
                md.into_bytes()
            }
            Kind::Csv => {
                let mut csv = String::from("id,date,name,department,amount,balance\n");
                let mut balance: i64 = rng.random_range(0..5_000_000);
                for id in 1..rng.random_range(20..8000) {
                    let amount: i64 = rng.random_range(-300_000..300_000);
                    balance += amount;
                    let dept = ["営業", "経理", "開発", "総務", "Sales", "IT"][rng.random_range(0..6)];
                    csv.push_str(&format!(
                        "{id},{},{},{dept},{amount},{balance}\n",
                        words::date(rng),
                        words::person(rng)
                    ));
                }
                csv.into_bytes()
            }
        })
    }
}

fn jpeg(rng: &mut Rng, path: &Path, w: Range<u16>, h: Range<u16>) -> Result<Vec<u8>, SimError> {
    let (w, h) = (rng.random_range(w), rng.random_range(h));
    let pixels = picture::photo(rng, w.into(), h.into());
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, rng.random_range(70..92))
        .encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|source| SimError::Jpeg { path: path.to_path_buf(), source })?;
    Ok(out)
}

fn png(rng: &mut Rng, path: &Path) -> Result<Vec<u8>, SimError> {
    let (w, h) = (rng.random_range(160..800u32), rng.random_range(120..600u32));
    let pixels = picture::graphic(rng, w as usize, h as usize);
    let mut out = Vec::new();
    let err = |source| SimError::Png { path: path.to_path_buf(), source };
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(err)?;
    writer.write_image_data(&pixels).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
}
