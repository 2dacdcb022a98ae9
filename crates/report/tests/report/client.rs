//! A file-share client as the attacker: the report names the client machine
//! as the one to isolate, lists how it was cut off, and the exports carry it.

use mamori_report::{ecs, render, Format, Lang};
use serde_json::Value;

use crate::fixture::{case, client_case, ACCOUNT_FAILED, ADDRESS, MACHINE, PORT, SMBD, USER};

const BOTH: [Format; 2] = [Format::Markdown, Format::Html];

fn all_of(text: &str, needles: &[&str]) {
    let missing: Vec<&&str> = needles.iter().filter(|n| !text.contains(**n)).collect();
    assert!(missing.is_empty(), "missing {missing:?} in:\n{text}");
}

fn none_of(text: &str, needles: &[&str]) {
    let found: Vec<&&str> = needles.iter().filter(|n| text.contains(**n)).collect();
    assert!(found.is_empty(), "unexpected {found:?} in:\n{text}");
}

/// The items of a Markdown list under a sub-heading, up to the next heading.
fn under<'a>(md: &'a str, heading: &str) -> Vec<&'a str> {
    let start = md.find(&format!("### {heading}")).unwrap_or_else(|| panic!("no {heading} in {md}"));
    md[start..].lines().skip(1).take_while(|l| !l.starts_with('#')).filter(|l| l.starts_with("- ")).collect()
}

/// The line of a section's list or table that holds `needle`.
fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle} in {text}"))
}

const EN_CLIENT: &[&str] = &[
    "over the network file share from a client PC",
    "That PC is the infected one: isolate it from the network and investigate it at once",
    "not on this server",
    "mamori cut off that client only",
    "the other users of the share kept working",
    "Physically disconnect the PC ACCT-PC07 (address 192.0.2.57)",
    "Do not log in with the account tanaka from any other machine",
    "Reset the password of the account tanaka",
    "Check the other machines that tanaka uses",
    "mamori unblock 192.0.2.57",
    "Cutting off the client",
];

const JA_CLIENT: &[&str] = &[
    "ファイル共有のクライアント端末",
    "感染しているのはこの端末です",
    "ただちにこの端末をネットワークから切り離し、調査してください",
    "このサーバーではありません",
    "mamori はこのクライアント端末だけを切り離しました",
    "ほかの利用者は、そのまま作業を続けられています",
    "クライアント端末 ACCT-PC07（アドレス 192.0.2.57）を、今すぐ物理的にネットワークから切り離す",
    "アカウント tanaka で、ほかの端末からログインしない",
    "アカウント tanaka のパスワードを、安全な別の端末から変更する",
    "tanaka が使っているほかの端末",
    "mamori unblock 192.0.2.57",
    "クライアント端末の切り離し",
];

#[test]
fn both_languages_name_the_client_machine_as_the_one_to_isolate() {
    for format in BOTH {
        let en = render(&client_case(), Lang::En, format);
        all_of(&en, &[MACHINE, ADDRESS, USER, "shares 経理, public", "Attacking PC (file-share client)"]);
        all_of(&en, EN_CLIENT);
        let ja = render(&client_case(), Lang::Ja, format);
        all_of(
            &ja,
            &[MACHINE, ADDRESS, USER, "共有フォルダー 経理、public", "攻撃元の端末（ファイル共有のクライアント）"],
        );
        all_of(&ja, JA_CLIENT);
        for text in [&en, &ja] {
            // The server's process is named as what served the client, never as the program detected.
            assert!(text.contains(SMBD));
            none_of(text, &["Program detected", "検知したプログラム"]);
        }
    }
}

#[test]
fn each_step_is_listed_with_its_time_and_outcome_and_a_failure_stands_out() {
    let en = render(&client_case(), Lang::En, Format::Markdown);
    // Section 3's table: time, step, result, what the agent recorded.
    let table = en[en.find("### Cutting off the client").unwrap()..].lines().filter(|l| l.starts_with("| 20")).count();
    assert_eq!(table, 5, "{en}");
    all_of(
        line_with(&en, "| Block its address both ways |"),
        &["20:06:41 JST", "| done |", "192.0.2.57 blocked both ways for 30 min (undo: mamori unblock 192.0.2.57)"],
    );
    all_of(line_with(&en, "| Disable its account |"), &["| FAILED |", ACCOUNT_FAILED]);
    // Section 6: the same steps as lines of what mamori did, in order.
    let auto = &en[en.find("## 6. What mamori did automatically").unwrap()..en.find("## 7.").unwrap()];
    let lines: Vec<&str> = auto.lines().filter(|l| l.starts_with("- ")).collect();
    assert!(lines[0].contains("Cut off the file-share client PC ACCT-PC07 (address 192.0.2.57) only"), "{lines:?}");
    let steps = [
        "Stop the server processes serving it: done",
        "Block its address both ways: done",
        "Disable its account: FAILED (smbpasswd -d tanaka: exit status 1)",
        "End its server processes (closing the files it had open): done",
        "End a connection it made again: done",
    ];
    for (line, step) in lines[1..].iter().zip(steps) {
        assert!(line.contains("JST: ") && line.contains(step), "{line} is not {step}");
    }
    assert!(!auto.contains("Suspended the program's processes"), "{auto}");
    // The failure is also said up front.
    all_of(&en, &["Not every step of cutting off the client succeeded. Failed: Disable its account."]);
    // Its processes were ended: nothing is left suspended to kill.
    assert!(!en.contains("mamori kill INC-0007"), "{en}");

    for format in BOTH {
        let ja = render(&client_case(), Lang::Ja, format);
        all_of(
            &ja,
            &[
                "この端末の要求を処理するサーバー側のプロセスを一時停止",
                "端末のアドレスとの通信を双方向で遮断",
                "サーバー側のプロセスを終了（端末が開いていたファイルを閉じる）",
                "アカウントを無効化",
                "端末が再び接続してきたため、その接続を切断",
                "完了",
                "アカウントを無効化：失敗（smbpasswd -d tanaka: exit status 1）",
                "クライアント端末を切り離す対処の一部が失敗しています。失敗した対処: アカウントを無効化。",
            ],
        );
        let en = render(&client_case(), Lang::En, format);
        all_of(&en, &["Disable its account: FAILED", ACCOUNT_FAILED]);
    }
}

#[test]
fn the_checklist_starts_with_the_client_and_keeps_the_server_online() {
    for (lang, heading, first, host_off) in [
        (
            Lang::En,
            "In the next 30 minutes",
            "Physically disconnect the PC ACCT-PC07",
            "Disconnect it from the network (unplug",
        ),
        (
            Lang::Ja,
            "今から 30 分以内",
            "クライアント端末 ACCT-PC07",
            "ネットワークから切り離す（LAN ケーブルを抜く、スイッチ",
        ),
    ] {
        let md = render(&client_case(), lang, Format::Markdown);
        let items = under(&md, heading);
        assert!(items[0].starts_with(&format!("- [ ] {first}")), "{items:?}");
        assert_eq!(items.len(), 4 + 1 + 6, "client items, keep the server on, the rest: {items:?}");
        assert!(!md.contains(host_off), "the server need not leave the network: {md}");
        none_of(&md, &["Disconnect it by hand", "手作業で切り離して"]);
        let plain = render(&case(), lang, Format::Markdown);
        assert!(plain.contains(host_off), "{plain}");
        assert_eq!(under(&plain, heading).len(), 8);
    }
    let en = render(&client_case(), Lang::En, Format::Markdown);
    assert!(under(&en, "In the next 24 hours")[0].contains("lift its block with \"mamori unblock 192.0.2.57\""));
}

#[test]
fn unknown_client_fields_say_unknown() {
    let mut bare = client_case();
    let cut = bare.incident.client.as_mut().unwrap();
    cut.client.machine.clear();
    cut.client.user.clear();
    cut.client.shares.clear();
    let en = render(&bare, Lang::En, Format::Markdown);
    all_of(
        &en,
        &[
            "name unknown, address 192.0.2.57, account unknown, shares unknown.",
            "- **Attacking PC (file-share client)**: unknown",
            "- **Its account**: unknown",
            "Physically disconnect the PC unknown (address 192.0.2.57)",
        ],
    );
    let ja = render(&bare, Lang::Ja, Format::Markdown);
    all_of(&ja, &["端末名 不明、アドレス 192.0.2.57、アカウント 不明、共有フォルダー 不明", "アカウント 不明 で"]);
    for text in [&en, &ja] {
        none_of(text, &["name ,", "account ,", "account )", "端末名 、", "アカウント 、"]);
    }
}

#[test]
fn a_report_without_a_client_says_none_of_it() {
    for format in BOTH {
        let en = render(&case(), Lang::En, format);
        none_of(&en, EN_CLIENT);
        none_of(&en, &["file-share client", "Attacking PC", "Server process that served it", "FAILED"]);
        assert!(en.contains("Program detected"));
        let ja = render(&case(), Lang::Ja, format);
        none_of(&ja, JA_CLIENT);
        none_of(&ja, &["クライアント端末", "攻撃元の端末", "要求を処理したサーバー側のプロセス"]);
        assert!(ja.contains("検知したプログラム"));
    }
}

#[test]
fn the_incident_form_names_the_client_not_the_server_program() {
    let case = client_case();
    let sha = case.exe_sha256.clone().unwrap();
    let en = render(&case, Lang::En, Format::Markdown);
    all_of(
        &en,
        &[
            "Intrusion route**: over the network file share (SMB), from the client PC ACCT-PC07",
            "attacking client: PC name ACCT-PC07, address 192.0.2.57, account tanaka",
            "detected a client of its file share (PC name ACCT-PC07",
        ],
    );
    let indicators = line_with(&en, "Indicators (hashes, addresses, tool names)");
    assert!(!indicators.contains(&sha) && !indicators.contains(SMBD), "Samba is no indicator: {indicators}");
    let ja = render(&case, Lang::Ja, Format::Markdown);
    all_of(&ja, &["侵入経路**: ネットワーク越しのファイル共有（SMB）経由", "攻撃元の端末: 端末名 ACCT-PC07"]);
}

#[test]
fn markdown_tables_keep_their_shape_with_a_client() {
    for lang in [Lang::Ja, Lang::En] {
        let md = render(&client_case(), lang, Format::Markdown);
        crate::render::assert_tables_keep_their_shape(&md);
    }
}

fn ecs_docs(case: &mamori_report::Case) -> Vec<Value> {
    let mut out = Vec::new();
    ecs(case, &mut out).unwrap();
    String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn ecs_carries_the_client_as_source_and_user() {
    let docs = ecs_docs(&client_case());
    let (alert, events) = docs.split_last().unwrap();
    for doc in events.iter().filter(|d| d["process"]["pid"].is_u64()) {
        assert_eq!(doc["source"]["ip"], ADDRESS, "{doc}");
        assert_eq!(doc["source"]["port"], PORT, "{doc}");
        assert_eq!(doc["source"]["domain"], MACHINE, "{doc}");
        assert_eq!(doc["user"]["name"], USER, "{doc}");
        assert_eq!(doc["host"]["hostname"], "fileserver-01", "host stays the server: {doc}");
    }
    // Events of no process (lost records) are the host's, not the client's.
    let lost = events.iter().find(|d| d["event"]["action"] == "events-lost").unwrap();
    assert!(lost.get("source").is_none(), "{lost}");
    assert_eq!(alert["source"]["ip"], ADDRESS);
    assert_eq!(alert["user"]["name"], USER);
    assert_eq!(alert["related"]["ip"][0], ADDRESS);
    assert_eq!(alert["related"]["user"], serde_json::json!([USER]));
    assert_eq!(alert["related"]["hosts"], serde_json::json!(["fileserver-01", MACHINE]));

    for doc in ecs_docs(&case()) {
        assert!(doc.get("source").is_none() && doc["user"].get("name").is_none(), "{doc}");
    }
}
