//! A report as structure, language and format apart: the composer fills it
//! from a case and a string table, the Markdown and HTML writers print it.
//! Every string in it is plain text; each writer escapes for its own format.

pub(crate) struct Doc {
    /// BCP 47 tag for the HTML `lang` attribute.
    pub lang: &'static str,
    pub title: String,
    pub sections: Vec<Section>,
    pub footer: String,
}

pub(crate) struct Section {
    pub heading: String,
    pub blocks: Vec<Block>,
}

pub(crate) enum Block {
    Para(String),
    /// A paragraph a reader must not miss (deadlines, warnings).
    Important(String),
    Sub(String),
    /// Label and value pairs.
    Facts(Vec<(String, String)>),
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
        /// Said under the table when rows were left out.
        more: Option<String>,
    },
    List(Vec<String>),
    /// Things to do, printed with boxes to tick.
    Checklist(Vec<String>),
    /// Text shown as found (a ransom note), line breaks kept.
    Verbatim(String),
}
