//! Personal-data judgement from names only.

use mamori_report::{personal_data, Reason};

#[test]
fn documents_in_folders_named_for_people_are_counted_by_reason() {
    let p = personal_data([
        "/srv/share/顧客/2025/一覧.xlsx",
        "/srv/share/Customers/list.csv",
        "/srv/share/社員/給与/2025-04.xlsx", // employees and payroll: one file, two reasons
        "/srv/share/HR/contract.docx",
        "/srv/share/MyCustomerList.xlsx",
        "/srv/clinic/患者/カルテ.pdf",
        "/home/a/resume_2024.pdf",
        "/srv/share/名簿.txt",
    ]);
    assert!(p.likely);
    assert_eq!(p.files, 8);
    assert_eq!(p.by_reason.get(&Reason::Customers), Some(&3));
    assert_eq!(p.by_reason.get(&Reason::Employees), Some(&2));
    assert_eq!(p.by_reason.get(&Reason::Payroll), Some(&1));
    assert_eq!(p.by_reason.get(&Reason::Medical), Some(&1));
    assert_eq!(p.by_reason.get(&Reason::Applicants), Some(&1));
    assert_eq!(p.by_reason.get(&Reason::People), Some(&1));
}

#[test]
fn programs_media_and_look_alike_words_are_not_counted() {
    let p = personal_data([
        "/srv/share/顧客/logo.png",         // not a document
        "/opt/app/client/main.js",          // code
        "/srv/share/three/notes.txt",       // "hr" inside a word
        "/srv/share/mychrome/settings.txt", // "hr" inside a word
        "/etc/app/client.json",             // configuration, not a document
        "/srv/share/accv/report.pdf",       // "cv" inside a word
        "/srv/share/projects/plan.xlsx",
        "/srv/share/顧客", // a folder, no extension
    ]);
    assert!(!p.likely, "{p:?}");
    assert_eq!(p.files, 0);
    assert!(p.by_reason.is_empty());
}
