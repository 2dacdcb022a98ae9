//! The words of a report, one table per language. A template names its
//! blanks in braces (`{n}`, `{host}`, ...); [`fill`] puts the values in.
//! `{s}` is English's plural ending, following `{n}`: empty when `n` is 1.
//! Both languages fill the same fields, so the compiler keeps them in step.

use mamori_event::{Indicator, Reason};

mod en;
mod ja;

pub(crate) use en::EN;
pub(crate) use ja::JA;

pub(crate) struct Text {
    pub action_failed: &'static str,
    pub action_killed: &'static str,
    pub action_resumed: &'static str,
    pub action_suspended: &'static str,
    pub auto_evidence: &'static str,
    pub auto_failed: &'static str,
    pub auto_isolated: &'static str,
    pub auto_killed: &'static str,
    pub auto_no_evidence: &'static str,
    pub auto_not_isolated: &'static str,
    pub auto_notes: &'static str,
    pub auto_restored: &'static str,
    pub auto_resumed: &'static str,
    pub auto_suspended: &'static str,
    pub auto_vault: &'static str,
    pub c_content: &'static str,
    pub c_count: &'static str,
    pub c_detail: &'static str,
    pub c_event: &'static str,
    pub c_item: &'static str,
    pub c_new_name: &'static str,
    pub c_op: &'static str,
    pub c_path: &'static str,
    pub c_reason: &'static str,
    pub c_restore: &'static str,
    pub c_time: &'static str,
    pub checklist_24_hours: &'static [&'static str],
    pub checklist_30_min: &'static [&'static str],
    /// The two items about the server itself, kept apart from the rest of the
    /// first 30 minutes: when a file-share client was the attacker, the
    /// server was not what ran the ransomware and need not leave the network.
    pub checklist_keep_host_on: &'static str,
    pub checklist_isolate_host: &'static str,
    pub confidence: &'static str,
    /// The identifier's confidence, by its word (`high`, `medium`, `low`).
    pub confidence_high: &'static str,
    pub confidence_medium: &'static str,
    pub confidence_low: &'static str,
    pub contacts: &'static [&'static str],
    pub contacts_heading: &'static str,
    pub count_of: &'static str,
    pub decryptor_none: &'static str,
    pub entropy: &'static str,
    pub evidence_none: &'static str,
    pub family_caution: &'static str,
    pub family_evidence: &'static str,
    pub family_hint: &'static str,
    pub family_candidates: &'static str,
    /// A candidate: `{family}` and the `{weight}` of what matched.
    pub family_candidate: &'static str,
    /// The first line of the evidence: `{n}` kinds of marker agreed, `{kinds}`.
    pub family_agreed: &'static str,
    /// One marker found: `{sample}` showed the `{kind}` `{text}`.
    pub family_match: &'static str,
    /// The kinds of marker, by the identifier's word for them.
    pub marker_name: &'static str,
    pub marker_phrase: &'static str,
    pub marker_contact: &'static str,
    pub marker_note_name: &'static str,
    pub marker_extension: &'static str,
    pub marker_trailer: &'static str,
    pub marker_channel: &'static str,
    pub marker_id_shape: &'static str,
    pub family_unknown: &'static str,
    pub files_intro: &'static str,
    pub files_more: &'static str,
    pub files_none: &'static str,
    pub footer: &'static str,
    pub h_automatic: &'static str,
    pub h_checklist: &'static str,
    pub h_family: &'static str,
    pub h_files: &'static str,
    pub h_nco: &'static str,
    pub h_notes: &'static str,
    pub h_personal: &'static str,
    pub h_ppc: &'static str,
    pub h_remarks: &'static str,
    pub h_stopped: &'static str,
    pub h_summary: &'static str,
    pub h_timeline: &'static str,
    pub isolation_none: &'static str,
    pub l_cmdline: &'static str,
    pub l_decryptor: &'static str,
    pub l_detected: &'static str,
    pub l_evidence: &'static str,
    pub l_family: &'static str,
    pub l_family_name: &'static str,
    pub l_files: &'static str,
    pub l_first_activity: &'static str,
    pub l_host: &'static str,
    pub l_incident: &'static str,
    pub l_isolation: &'static str,
    pub l_latency: &'static str,
    pub l_personal: &'static str,
    pub l_program: &'static str,
    pub l_response: &'static str,
    pub l_restore: &'static str,
    pub l_score: &'static str,
    pub l_started: &'static str,
    pub l_stopped_at: &'static str,
    pub l_uid: &'static str,
    pub lang: &'static str,
    pub list_sep: &'static str,
    pub lost_events: &'static str,
    pub nco_addresses: &'static str,
    pub nco_damage: &'static str,
    pub nco_damage_label: &'static str,
    pub nco_demand: &'static str,
    pub nco_demand_label: &'static str,
    pub nco_demand_unknown: &'static str,
    pub nco_extension: &'static str,
    pub nco_indicators: &'static str,
    pub nco_intro: &'static str,
    pub nco_leak_no: &'static str,
    pub nco_leak_yes: &'static str,
    pub nco_no_extension: &'static str,
    pub nco_note: &'static str,
    pub nco_route: &'static str,
    pub nco_route_value: &'static str,
    pub nco_tools: &'static str,
    pub next_24_hours: &'static str,
    pub next_30_min: &'static str,
    pub no: &'static str,
    pub notes_none: &'static str,
    pub notes_warning: &'static str,
    pub op_create: &'static str,
    pub op_delete: &'static str,
    pub op_rename: &'static str,
    pub op_truncate: &'static str,
    pub op_write: &'static str,
    pub personal_likely: &'static str,
    pub personal_method: &'static str,
    pub personal_no_short: &'static str,
    pub personal_unlikely: &'static str,
    pub personal_yes_short: &'static str,
    pub ppc_cause: &'static str,
    pub ppc_deadlines: &'static str,
    pub ppc_first_change: &'static str,
    pub ppc_intro: &'static str,
    pub ppc_items: [&'static str; 9],
    pub ppc_items_likely: &'static str,
    pub ppc_items_unlikely: &'static str,
    pub ppc_other: &'static str,
    pub ppc_overview: &'static str,
    pub ppc_people: &'static str,
    pub ppc_prevention: &'static str,
    pub ppc_rest_to_fill: &'static str,
    pub ppc_secondary: &'static str,
    pub ppc_secondary_leak: &'static str,
    pub r_applicants: &'static str,
    pub r_customers: &'static str,
    pub r_employees: &'static str,
    pub r_medical: &'static str,
    pub r_payroll: &'static str,
    pub r_people: &'static str,
    pub reasons: &'static str,
    pub restore_none: &'static str,
    pub restored_failed: &'static str,
    pub restored_intact: &'static str,
    pub restored_not_yet: &'static str,
    pub restored_restored: &'static str,
    pub restored_unchecked: &'static str,
    pub summary_detected: &'static str,
    pub summary_failed: &'static str,
    pub summary_failed_warning: &'static str,
    pub summary_files: &'static str,
    pub summary_killed: &'static str,
    pub summary_no_files: &'static str,
    pub summary_resumed: &'static str,
    pub summary_suspended: &'static str,
    pub suspended_hint: &'static str,
    pub tell: &'static [&'static str],
    pub tell_heading: &'static str,
    pub timeline_empty: &'static str,
    pub timeline_exports: &'static str,
    pub timeline_skipped: &'static str,
    pub title: &'static str,
    pub to_fill: &'static str,
    pub unknown: &'static str,
    pub w_canary: &'static str,
    pub w_created: &'static str,
    pub w_deleted: &'static str,
    pub w_open_read: &'static str,
    pub w_open_write: &'static str,
    pub w_overflow: &'static str,
    pub w_proc: &'static str,
    pub w_renamed: &'static str,
    pub w_trusted: &'static str,
    pub w_vault: &'static str,
    pub w_written: &'static str,
    pub yes: &'static str,
    pub response_pids: &'static str,
    pub quote: &'static str,
    pub host_detail: &'static str,
    pub files_count: &'static str,
    pub measure_action: &'static str,
    pub measure_isolation: &'static str,
    pub measure_restore: &'static str,
    pub measure_evidence: &'static str,
    /// When the attacker was a client of the file share (an SMB client of
    /// Samba here): the server's process that served it is not the attacker,
    /// the client machine is. Blanks: `{machine}`, `{address}`, `{user}`,
    /// `{shares}` (each the `unknown` word when not known).
    pub summary_client_detected: &'static str,
    /// `{n}` is the number of shares, for the plural.
    pub summary_client: &'static str,
    pub summary_client_cut: &'static str,
    pub summary_client_failed_warning: &'static str,
    /// `{steps}`: the failed steps, by name.
    pub summary_client_steps_failed: &'static str,
    pub l_client_machine: &'static str,
    pub l_client_address: &'static str,
    pub l_client_user: &'static str,
    pub l_client_shares: &'static str,
    pub l_served_by: &'static str,
    pub stopped_client: &'static str,
    pub h_cut: &'static str,
    pub c_when: &'static str,
    pub c_step: &'static str,
    pub c_result: &'static str,
    pub cut_stopped: &'static str,
    pub cut_blocked: &'static str,
    pub cut_ended: &'static str,
    pub cut_account: &'static str,
    pub cut_reconnected: &'static str,
    pub cut_unblocked: &'static str,
    pub cut_done: &'static str,
    pub cut_failed: &'static str,
    /// One step as a line of what mamori did: `{time}`, `{step}`, `{result}`.
    pub cut_line: &'static str,
    /// Appended to a step's line when the agent recorded what it did or why it failed.
    pub cut_detail: &'static str,
    pub auto_client: &'static str,
    /// First in the 30-minute checklist, before everything about the server.
    pub checklist_client: &'static [&'static str],
    /// First in the 24-hour checklist.
    pub checklist_client_unblock: &'static str,
    pub ppc_overview_client: &'static str,
    pub nco_route_client: &'static str,
    /// The client as an indicator, in place of the server's hash and name.
    pub nco_client: &'static str,
    /// One reason: `{what}` is the indicator's wording, `{n}` its files, `{paths}` some of them.
    pub reason_found: &'static str,
    /// Appended to a reason whose files were not all named.
    pub reason_more: &'static str,
    pub reason_unlisted: &'static str,
    pub ind_format_lost: &'static str,
    pub ind_content_destroyed: &'static str,
    pub ind_encoded_ciphertext: &'static str,
    pub ind_structure_broken: &'static str,
    pub ind_regions_encrypted: &'static str,
    pub ind_similarity_lost: &'static str,
    pub ind_replaced_by_ciphertext: &'static str,
    pub ind_extension_rename: &'static str,
    pub ind_ransom_note: &'static str,
    pub ind_canary: &'static str,
    pub ind_vault_touched: &'static str,
    pub ind_breadth: &'static str,
}

impl Text {
    /// What an indicator means, in this language.
    pub(crate) fn indicator(&self, i: Indicator) -> &'static str {
        match i {
            Indicator::FormatLost => self.ind_format_lost,
            Indicator::ContentDestroyed => self.ind_content_destroyed,
            Indicator::EncodedCiphertext => self.ind_encoded_ciphertext,
            Indicator::StructureBroken => self.ind_structure_broken,
            Indicator::RegionsEncrypted => self.ind_regions_encrypted,
            Indicator::SimilarityLost => self.ind_similarity_lost,
            Indicator::ReplacedByCiphertext => self.ind_replaced_by_ciphertext,
            Indicator::ExtensionRename => self.ind_extension_rename,
            Indicator::RansomNote => self.ind_ransom_note,
            Indicator::Canary => self.ind_canary,
            Indicator::VaultTouched => self.ind_vault_touched,
            Indicator::Breadth => self.ind_breadth,
        }
    }

    /// One of an incident's reasons as a line. A reason from before they
    /// were typed is the engine's English sentence, shown as it was.
    pub(crate) fn reason(&self, r: &Reason) -> String {
        match r {
            Reason::Found(f) => {
                let mut line = fill(
                    self.reason_found,
                    &[
                        ("what", self.indicator(f.indicator)),
                        ("n", &f.files.to_string()),
                        ("paths", &f.examples.join(self.list_sep)),
                    ],
                );
                let more = f.files.saturating_sub(f.examples.len());
                if more > 0 {
                    line.push_str(&fill(self.reason_more, &[("n", &more.to_string())]));
                }
                line
            }
            Reason::Unlisted { unlisted } => fill(self.reason_unlisted, &[("n", &unlisted.to_string())]),
            Reason::Text(text) => text.clone(),
        }
    }
}

/// Replaces each `{name}` in `template` with its value; unknown names stay as they are.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let plural = match values.iter().find(|(k, _)| *k == "n") {
        Some((_, "1")) => "",
        _ => "s",
    };
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            let value = values.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
            value.or((name == "s").then_some(plural)).map(|v| (v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use mamori_event::{Finding, Indicator, Reason};

    use super::{fill, EN, JA};

    /// The indicator after `i`, so that walking from the first visits them
    /// all: a new indicator does not compile here until it is given a place.
    fn after(i: Indicator) -> Option<Indicator> {
        use Indicator::*;
        match i {
            FormatLost => Some(ContentDestroyed),
            ContentDestroyed => Some(EncodedCiphertext),
            EncodedCiphertext => Some(StructureBroken),
            StructureBroken => Some(RegionsEncrypted),
            RegionsEncrypted => Some(SimilarityLost),
            SimilarityLost => Some(ReplacedByCiphertext),
            ReplacedByCiphertext => Some(ExtensionRename),
            ExtensionRename => Some(RansomNote),
            RansomNote => Some(Canary),
            Canary => Some(VaultTouched),
            VaultTouched => Some(Breadth),
            Breadth => None,
        }
    }

    #[test]
    fn every_indicator_is_worded_in_both_languages() {
        let mut next = Some(Indicator::FormatLost);
        let mut seen = Vec::new();
        while let Some(i) = next {
            assert!(!seen.contains(&i), "{i:?} comes twice");
            let (en, ja) = (EN.indicator(i), JA.indicator(i));
            assert!(!en.trim().is_empty() && !ja.trim().is_empty(), "{i:?}");
            assert!(!ja.is_ascii(), "{i:?} is not worded in Japanese: {ja}");
            seen.push(i);
            next = after(i);
        }
    }

    #[test]
    fn a_reason_names_its_files_and_how_many_more() {
        let found = Reason::Found(Finding {
            indicator: Indicator::Canary,
            files: 3,
            examples: vec!["/d/a".into(), "/d/b".into()],
        });
        assert_eq!(EN.reason(&found), "decoy files changed, renamed or deleted (3 files): /d/a, /d/b and 1 more");
        assert_eq!(JA.reason(&found), "おとりファイルが変更、名前の変更または削除された（3 件）：/d/a、/d/b ほか 1 件");
        let old = Reason::Text("decoy files changed, renamed or deleted (1 file): /d/a".into());
        assert_eq!(JA.reason(&old), "decoy files changed, renamed or deleted (1 file): /d/a", "old prose is kept");
    }

    #[test]
    fn fill_puts_values_in_once_and_follows_n_for_plurals() {
        assert_eq!(fill("{n} file{s}", &[("n", "1")]), "1 file");
        assert_eq!(fill("{n} file{s}", &[("n", "3")]), "3 files");
        // A value holding braces is not read as a template again.
        assert_eq!(fill("at {path} ({n})", &[("path", "/a/{n}"), ("n", "2")]), "at /a/{n} (2)");
        assert_eq!(fill("{unknown} {", &[]), "{unknown} {");
    }
}
