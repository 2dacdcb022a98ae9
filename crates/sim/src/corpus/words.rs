//! Generated prose, names and numbers in English and Japanese: enough
//! variety that documents differ, compress like real text and look real.

use chacha20::ChaCha8Rng;
use rand::seq::IndexedRandom;
use rand::RngExt;

pub(crate) type Rng = ChaCha8Rng;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Lang {
    En,
    Ja,
}

impl Lang {
    pub fn pick(rng: &mut Rng) -> Lang {
        if rng.random_bool(0.5) {
            Lang::En
        } else {
            Lang::Ja
        }
    }
}

const EN_SUBJECTS: &[&str] = &[
    "The team",
    "Our customer",
    "The quarterly report",
    "The new supplier",
    "Finance",
    "The project lead",
    "The migration plan",
    "The audit",
    "Each department",
    "The board",
    "The backup server",
    "Sales in Osaka",
    "The design review",
    "The support desk",
    "The contract",
    "Our warehouse",
];
const EN_VERBS: &[&str] = &[
    "confirmed",
    "reviewed",
    "postponed",
    "approved",
    "rejected",
    "updated",
    "summarised",
    "estimated",
    "delivered",
    "requested",
    "measured",
    "scheduled",
    "compared",
    "published",
    "archived",
    "signed",
];
const EN_OBJECTS: &[&str] = &[
    "the revised budget",
    "the delivery schedule",
    "the invoice for March",
    "the test results",
    "the staffing plan",
    "the price list",
    "the meeting minutes",
    "the risk register",
    "the floor plan",
    "the travel expenses",
    "the customer survey",
    "the maintenance window",
    "the license renewal",
    "the inventory count",
    "the training material",
    "the shipping labels",
];
const EN_TAILS: &[&str] = &[
    "before the end of the month",
    "after a short discussion",
    "with two open questions",
    "as agreed last week",
    "for the second time",
    "without further changes",
    "pending legal review",
    "in the shared folder",
    "ahead of the deadline",
    "despite the delay",
    "according to the new policy",
    "for all branches",
];

const JA_SUBJECTS: &[&str] = &[
    "営業部は",
    "経理担当者は",
    "プロジェクトチームは",
    "取引先は",
    "品質管理部は",
    "総務課は",
    "開発チームは",
    "人事部は",
    "大阪支店は",
    "監査法人は",
    "情報システム部は",
    "社長は",
];
const JA_OBJECTS: &[&str] = &[
    "来期の予算案を",
    "納品スケジュールを",
    "三月分の請求書を",
    "試験結果を",
    "見積書を",
    "議事録を",
    "在庫一覧を",
    "出張旅費の精算を",
    "契約書の草案を",
    "顧客アンケートを",
    "保守計画を",
    "研修資料を",
];
const JA_VERBS: &[&str] = &[
    "確認しました。",
    "承認しました。",
    "修正しました。",
    "提出しました。",
    "延期しました。",
    "共有しました。",
    "検討しています。",
    "作成しました。",
    "送付しました。",
    "更新しました。",
    "報告しました。",
    "見直しました。",
];
const JA_ADVERBIALS: &[&str] =
    &["本日", "先週の会議で", "月末までに", "予定どおり", "念のため", "急ぎで", "来週中に", "改めて"];

const FAMILY_NAMES_JA: &[&str] =
    &["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田"];
const GIVEN_NAMES_JA: &[&str] = &["太郎", "花子", "健", "美咲", "翔太", "陽菜", "大輔", "さくら", "誠", "結衣"];
const NAMES_EN: &[&str] = &[
    "Alice Moore",
    "Brian Clark",
    "Chloe Evans",
    "David Lee",
    "Emma Scott",
    "Frank Hall",
    "Grace Young",
    "Henry King",
    "Isla Wright",
    "Jack Green",
    "Kate Baker",
    "Liam Adams",
];

fn pick<'a>(rng: &mut Rng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or_default()
}

pub fn sentence(rng: &mut Rng, lang: Lang, out: &mut String) {
    match lang {
        Lang::En => {
            out.push_str(pick(rng, EN_SUBJECTS));
            out.push(' ');
            out.push_str(pick(rng, EN_VERBS));
            out.push(' ');
            out.push_str(pick(rng, EN_OBJECTS));
            if rng.random_bool(0.6) {
                out.push(' ');
                out.push_str(pick(rng, EN_TAILS));
            }
            out.push_str(". ");
        }
        Lang::Ja => {
            if rng.random_bool(0.5) {
                out.push_str(pick(rng, JA_ADVERBIALS));
                out.push('、');
            }
            out.push_str(pick(rng, JA_SUBJECTS));
            out.push_str(pick(rng, JA_OBJECTS));
            out.push_str(pick(rng, JA_VERBS));
        }
    }
}

pub fn paragraph(rng: &mut Rng, lang: Lang) -> String {
    let mut out = String::new();
    for _ in 0..rng.random_range(2..8) {
        sentence(rng, lang, &mut out);
    }
    out.truncate(out.trim_end().len());
    out
}

/// Paragraphs separated by blank lines until about `bytes` long.
pub fn prose(rng: &mut Rng, lang: Lang, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 512);
    while out.len() < bytes {
        out.push_str(&paragraph(rng, lang));
        out.push_str("\n\n");
    }
    out
}

pub fn person(rng: &mut Rng) -> String {
    if rng.random_bool(0.6) {
        format!("{} {}", pick(rng, FAMILY_NAMES_JA), pick(rng, GIVEN_NAMES_JA))
    } else {
        pick(rng, NAMES_EN).to_owned()
    }
}

pub fn date(rng: &mut Rng) -> String {
    format!("{}-{:02}-{:02}", rng.random_range(2019..2026), rng.random_range(1..13), rng.random_range(1..29))
}

/// Escapes text for XML character data and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}
