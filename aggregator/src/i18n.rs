//! Words the node makes for people, in Chinese and English from one
//! catalog: `assets/catalog.json`, which the dashboard loads too. Server
//! text (alert summaries, rule descriptions, reasons) is kept as a catalog
//! key and its arguments, so each reader gets it in their own language:
//! the API by `Accept-Language`, robots and mail in Chinese.

use std::{collections::BTreeMap, fmt::Display, sync::LazyLock};

use serde::{Deserialize, Serialize};

/// A reader's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    Zh,
    /// The API's default: scripts see the same words as before.
    #[default]
    En,
}

impl Lang {
    /// The first language of an `Accept-Language` header that the catalog
    /// has (by its primary tag, in the order given; a weight of 0 refuses
    /// one), else English.
    pub fn negotiate(header: &str) -> Self {
        header
            .split(',')
            .filter_map(|part| {
                let mut fields = part.split(';');
                let tag = fields.next().unwrap_or("").trim();
                // `q=0` says "not this one".
                let refused = fields.any(|f| {
                    f.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                (!refused).then_some(tag)
            })
            .find_map(|tag| {
                let primary = tag.split('-').next().unwrap_or("");
                if primary.eq_ignore_ascii_case("zh") {
                    Some(Self::Zh)
                } else if primary.eq_ignore_ascii_case("en") {
                    Some(Self::En)
                } else {
                    None
                }
            })
            .unwrap_or_default()
    }

    fn column(self) -> usize {
        match self {
            Self::Zh => 0,
            Self::En => 1,
        }
    }
}

/// Every key with its `[zh, en]` wording; `{name}` marks an argument.
static CATALOG: LazyLock<BTreeMap<String, [String; 2]>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../assets/catalog.json"))
        .expect("assets/catalog.json is checked by the tests")
});

/// A message: a catalog key and its arguments, rendered when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub key: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, Arg>,
}

/// An argument: a value as it is (a hostname, a figure), or words of the
/// catalog themselves (a state, an XID's name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Arg {
    Value(String),
    Text(Text),
    /// Several, one after another.
    List(Vec<Text>),
}

impl Arg {
    fn render(&self, lang: Lang) -> String {
        match self {
            Self::Value(v) => v.clone(),
            Self::Text(t) => t.render(lang),
            Self::List(texts) => {
                let rendered: Vec<String> = texts.iter().map(|t| t.render(lang)).collect();
                rendered.join(match lang {
                    Lang::Zh => "；",
                    Lang::En => "; ",
                })
            }
        }
    }
}

impl Text {
    pub fn new(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            args: BTreeMap::new(),
        }
    }

    pub fn arg(mut self, name: &str, value: impl Display) -> Self {
        self.args
            .insert(name.to_owned(), Arg::Value(value.to_string()));
        self
    }

    /// No words: an optional part of a message that is not there.
    pub fn empty() -> Self {
        Self::new("")
    }

    /// An argument that is several texts, one after another.
    pub fn arg_list(mut self, name: &str, texts: Vec<Text>) -> Self {
        self.args.insert(name.to_owned(), Arg::List(texts));
        self
    }

    /// An argument that is itself words of the catalog.
    pub fn arg_text(mut self, name: &str, text: Text) -> Self {
        self.args.insert(name.to_owned(), Arg::Text(text));
        self
    }

    /// The wording in `lang`, arguments filled in. A key the catalog lacks
    /// (a message recorded by a newer version) reads as itself.
    pub fn render(&self, lang: Lang) -> String {
        let Some(wordings) = CATALOG.get(&self.key) else {
            // Also the empty text's.
            return self.key.clone();
        };
        fill(&wordings[lang.column()], |name| {
            self.args.get(name).map(|a| a.render(lang))
        })
    }

    /// Words that come as they are, in either language: a message from
    /// elsewhere (a child node's, the database's) that has no key here.
    pub fn plain(words: impl Display) -> Self {
        Self::new("plain").arg("text", words)
    }

    /// The catalog's words for `key`, or `fallback` as it is where the
    /// catalog has none (a state a newer version wrote).
    pub fn key_or_plain(key: &str, fallback: &str) -> Self {
        let text = Self::new(key);
        if text.known() {
            text
        } else {
            Self::plain(fallback)
        }
    }

    /// Is the key in the catalog?
    pub fn known(&self) -> bool {
        CATALOG.contains_key(&self.key)
    }
}

/// English, as logs and the command line read it.
impl Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(Lang::En))
    }
}

/// The catalog's wording of `key` in `lang`, without arguments.
pub fn word(key: &str, lang: Lang) -> String {
    Text::new(key).render(lang)
}

fn fill(template: &str, arg: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let found = after
            .find('}')
            .and_then(|close| Some((arg(&after[..close])?, close)));
        match found {
            Some((value, close)) => {
                out.push_str(&value);
                rest = &after[close + 1..];
            }
            _ => {
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
    use super::*;

    /// The `{name}`s of a wording, sorted.
    fn placeholders(template: &str) -> Vec<&str> {
        let mut names: Vec<&str> = template
            .split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name))
            .filter(|name| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn accept_language_picks_the_first_language_the_catalog_has() {
        assert_eq!(Lang::negotiate("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(Lang::negotiate("en-US,zh;q=0.5"), Lang::En);
        assert_eq!(Lang::negotiate("fr-FR, ZH-hans"), Lang::Zh);
        assert_eq!(Lang::negotiate("de"), Lang::En);
        assert_eq!(Lang::negotiate("zh;q=0, en"), Lang::En);
        assert_eq!(Lang::negotiate(""), Lang::En);
    }

    #[test]
    fn arguments_fill_their_places_and_braces_without_one_stay() {
        let text = Text::new("alert.host_silent")
            .arg("hostname", "cpu-node-03")
            .arg("seconds", 16);
        assert_eq!(
            text.render(Lang::En),
            "cpu-node-03 has sent no sample for 16 s"
        );
        assert_eq!(text.render(Lang::Zh), "cpu-node-03 已 16 秒未上报样本");
        let arg = |name: &str| (name == "a").then(|| "1".to_owned());
        assert_eq!(fill("{a} {b} {", arg), "1 {b} {");
        assert_eq!(Text::new("no.such.key").render(Lang::Zh), "no.such.key");
    }

    #[test]
    fn every_wording_has_both_languages_with_the_same_arguments() {
        for (key, [zh, en]) in CATALOG.iter() {
            assert!(
                !zh.is_empty() && !en.is_empty(),
                "{key}: a wording is empty"
            );
            assert_eq!(
                placeholders(zh),
                placeholders(en),
                "{key}: arguments differ"
            );
        }
    }

    /// Every key the server's code names (as `Text::new("…")`) is in the
    /// catalog.
    #[test]
    fn every_key_the_code_uses_is_in_the_catalog() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src];
        let mut seen = 0;
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("i18n.rs") {
                continue;
            }
            let code = std::fs::read_to_string(&path).unwrap();
            for (at, _) in code.match_indices("Text::new(") {
                // rustfmt may put the key on the next line.
                let rest = code[at + "Text::new(".len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let key = &rest[..rest.find('"').unwrap()];
                assert!(
                    CATALOG.contains_key(key),
                    "{}: {key} is not in the catalog",
                    path.display()
                );
                seen += 1;
            }
        }
        assert!(seen > 10, "the reading of the code found only {seen} keys");
    }
}
