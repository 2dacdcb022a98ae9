//! Weights and thresholds of the detection engine, read from TOML.
//!
//! Every field has a documented default (see `docs/CONFIG.md` and
//! `mamori.example.toml`); a config is refused, with the key named, when a
//! value is out of range, so a typo can never silently weaken detection.

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// The engine's whole configuration: `[detect]` and `[weights]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub detect: Detect,
    pub weights: Weights,
}

/// When evidence becomes a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Detect {
    /// Score at which an actor is judged to be ransomware.
    pub threshold: f64,
    /// Evidence loses half its weight after this many seconds, so a slow
    /// attacker still accumulates while normal work fades away.
    pub half_life_secs: f64,
    /// Distinct damaged files needed for a verdict (a canary alone suffices).
    pub min_files: usize,
    /// Entropy (bits/byte) at or above which content counts as ciphertext.
    pub cipher_entropy: f32,
    /// Similarity (0..=100) at or below which "after" no longer resembles "before".
    pub similarity_lost_below: u8,
    /// Renames to the same new extension before they count as a pattern.
    pub rename_cluster: usize,
    /// Folders that must receive the same new text file before it counts as a ransom note.
    pub note_dirs: usize,
    /// Largest file, in bytes, that can count as a ransom note.
    pub note_max_size: u64,
    /// How far (as a fraction) a new file's size may differ from a deleted
    /// original's for the pair to count as "encrypted copy replaced original".
    pub size_match: f64,
}

impl Default for Detect {
    fn default() -> Self {
        Detect {
            threshold: 100.0,
            half_life_secs: 1800.0,
            min_files: 2,
            cipher_entropy: 7.2,
            similarity_lost_below: 25,
            rename_cluster: 3,
            note_dirs: 3,
            note_max_size: 64 * 1024,
            size_match: 0.25,
        }
    }
}

/// Points each indicator adds to an actor's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    /// A recognised file (document, image, text) rewritten into unrecognisable ciphertext-like bytes.
    pub format_lost: f64,
    /// A recognised file overwritten with one repeated byte, or a recognised binary document emptied.
    pub content_destroyed: f64,
    /// A file rewritten into base64/hex text of random bytes.
    pub encoded_ciphertext: f64,
    /// A recognised file whose header survived but whose structure did not.
    pub structure_broken: f64,
    /// Regions of a file rewritten from ordinary data into ciphertext (intermittent encryption).
    pub regions_encrypted: f64,
    /// After no longer resembles before, and the content got more random.
    pub similarity_lost: f64,
    /// An original the actor read, deleted or renamed over, with a ciphertext-like replacement.
    pub replaced_by_ciphertext: f64,
    /// Per file renamed to a new, unknown extension once the pattern is established.
    pub extension_rename: f64,
    /// Ransom note: the same new text file in `note_dirs` folders.
    pub ransom_note: f64,
    /// Added per further folder that receives the note.
    pub ransom_note_extra_dir: f64,
    /// Cap on the ransom-note indicator.
    pub ransom_note_max: f64,
    /// A decoy file changed, renamed or deleted.
    pub canary: f64,
    /// Per further folder in which the actor damaged files (breadth).
    pub breadth_per_dir: f64,
    /// Cap on the breadth bonus.
    pub breadth_max: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            format_lost: 40.0,
            content_destroyed: 40.0,
            encoded_ciphertext: 40.0,
            structure_broken: 35.0,
            regions_encrypted: 35.0,
            similarity_lost: 20.0,
            replaced_by_ciphertext: 40.0,
            extension_rename: 15.0,
            ransom_note: 30.0,
            ransom_note_extra_dir: 10.0,
            ransom_note_max: 60.0,
            canary: 100.0,
            breadth_per_dir: 5.0,
            breadth_max: 20.0,
        }
    }
}

impl Config {
    /// Parses TOML and validates every value.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks ranges; the error names the offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.detect;
        positive("detect.threshold", d.threshold)?;
        positive("detect.half_life_secs", d.half_life_secs)?;
        if d.min_files == 0 {
            return Err(invalid("detect.min_files", "must be at least 1", d.min_files));
        }
        if !(0.0..=8.0).contains(&d.cipher_entropy) || d.cipher_entropy < 4.0 {
            return Err(invalid(
                "detect.cipher_entropy",
                "must be between 4.0 and 8.0 bits per byte",
                d.cipher_entropy,
            ));
        }
        if d.similarity_lost_below > 100 {
            return Err(invalid("detect.similarity_lost_below", "must be between 0 and 100", d.similarity_lost_below));
        }
        if d.rename_cluster < 2 {
            return Err(invalid("detect.rename_cluster", "must be at least 2", d.rename_cluster));
        }
        if d.note_dirs < 2 {
            return Err(invalid("detect.note_dirs", "must be at least 2", d.note_dirs));
        }
        if d.note_max_size == 0 {
            return Err(invalid("detect.note_max_size", "must be at least 1 byte", d.note_max_size));
        }
        if !(0.0..=1.0).contains(&d.size_match) {
            return Err(invalid("detect.size_match", "must be a fraction between 0.0 and 1.0", d.size_match));
        }
        let w = &self.weights;
        for (key, value) in [
            ("weights.format_lost", w.format_lost),
            ("weights.content_destroyed", w.content_destroyed),
            ("weights.encoded_ciphertext", w.encoded_ciphertext),
            ("weights.structure_broken", w.structure_broken),
            ("weights.regions_encrypted", w.regions_encrypted),
            ("weights.similarity_lost", w.similarity_lost),
            ("weights.replaced_by_ciphertext", w.replaced_by_ciphertext),
            ("weights.extension_rename", w.extension_rename),
            ("weights.ransom_note", w.ransom_note),
            ("weights.ransom_note_extra_dir", w.ransom_note_extra_dir),
            ("weights.ransom_note_max", w.ransom_note_max),
            ("weights.canary", w.canary),
            ("weights.breadth_per_dir", w.breadth_per_dir),
            ("weights.breadth_max", w.breadth_max),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(invalid(key, "must be a number of 0 or more", value));
            }
        }
        Ok(())
    }
}

fn positive(key: &'static str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(key, "must be a number greater than 0", value))
    }
}

fn invalid(key: &'static str, problem: &'static str, value: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid { key, problem, value: value.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_default() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn a_partial_config_keeps_the_other_defaults() {
        let cfg = Config::from_toml("[detect]\nthreshold = 150\n").unwrap();
        assert_eq!(cfg.detect.threshold, 150.0);
        assert_eq!(cfg.weights, Weights::default());
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let err = Config::from_toml("[detect]\nthreshhold = 1\n").unwrap_err().to_string();
        assert!(err.contains("threshhold"), "{err}");
    }

    #[test]
    fn an_out_of_range_value_names_the_key() {
        let err = Config::from_toml("[weights]\ncanary = -5\n").unwrap_err().to_string();
        assert!(err.contains("weights.canary"), "{err}");
        let err = Config::from_toml("[detect]\ncipher_entropy = 9\n").unwrap_err().to_string();
        assert!(err.contains("detect.cipher_entropy"), "{err}");
    }

    #[test]
    fn a_wrong_type_is_refused_with_the_key() {
        let err = Config::from_toml("[detect]\nmin_files = \"two\"\n").unwrap_err().to_string();
        assert!(err.contains("min_files"), "{err}");
    }
}
