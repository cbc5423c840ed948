//! The Suanli resource identifier (算力标识).
//!
//! The national computing-power interconnection platform has published no
//! identifier format, so Suanli issues its own and keeps whatever the
//! national platform assigns beside it, verbatim, as an
//! [`ExternalIdentifier`]. When the national format is published, it becomes
//! one more scheme there; nothing here has to guess at it.
//!
//! Canonical form, eight fields joined by `_` (specified in
//! `docs/identifiers.md`):
//!
//! ```text
//! CN.11_PRV001_I65_110108_A_H100-80G_000123_T
//! │     │      │   │      │ │        │      └ check character (ISO/IEC 7064 MOD 37-2)
//! │     │      │   │      │ │        └ serial, per owner
//! │     │      │   │      │ └ spec code
//! │     │      │   │      └ resource type
//! │     │      │   └ location, GB/T 2260
//! │     │      └ industry, GB/T 4754 section + division
//! │     └ owner (provider code assigned by the issuing node)
//! └ issuing node prefix
//! ```
//!
//! The text uses only `0-9 A-Z . - _ *`, all legal unescaped in a URL path
//! segment, so it goes into `GET /api/v1/resources/{identifier}` as is. It
//! never contains `:`, which tells it apart from an external identifier.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Joins the eight fields.
pub const FIELD_SEPARATOR: char = '_';
/// Joins node prefix segments.
pub const NODE_SEPARATOR: char = '.';
/// Joins spec code segments.
pub const SPEC_SEPARATOR: char = '-';

const FIELD_COUNT: usize = 8;

/// The ISO/IEC 7064 MOD 37-2 alphabet; a character's value is its index.
const CHECK_ALPHABET: &[u8; 37] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*";
const MODULUS: u32 = 37;
/// Value of every separator in the check: that of `*`, the one MOD 37-2
/// value no data character has. See [`check_character`] for why one value
/// serves all three separators.
const SEPARATOR_VALUE: u32 = 36;

/// A field of the identifier, in printed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    NodePrefix,
    Owner,
    Industry,
    Location,
    ResourceType,
    Spec,
    Serial,
    Check,
}

impl Field {
    pub const ALL: [Self; FIELD_COUNT] = [
        Self::NodePrefix,
        Self::Owner,
        Self::Industry,
        Self::Location,
        Self::ResourceType,
        Self::Spec,
        Self::Serial,
        Self::Check,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::NodePrefix => "node prefix",
            Self::Owner => "owner",
            Self::Industry => "industry",
            Self::Location => "location",
            Self::ResourceType => "resource type",
            Self::Spec => "spec",
            Self::Serial => "serial",
            Self::Check => "check",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A field value that breaks its grammar. Returned by the field types' own
/// `parse`, so that a provider registering a [`RegionCode`] or [`Industry`]
/// gets the same message an identifier would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} field {value:?}: {reason}")]
pub struct FieldError {
    pub field: Field,
    pub value: String,
    pub reason: String,
}

impl FieldError {
    fn new(field: Field, value: &str, reason: impl Into<String>) -> Self {
        Self {
            field,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Why a string is not a Suanli resource identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("identifier: empty")]
    Empty,
    #[error("identifier: expected {expected} fields separated by '_', found {found}")]
    FieldCount { found: usize, expected: usize },
    #[error("identifier: {field} field {value:?}: {reason}")]
    Field {
        field: Field,
        value: String,
        reason: String,
    },
    #[error(
        "identifier: check character is '{found}', expected '{expected}' (ISO/IEC 7064 MOD 37-2)"
    )]
    Check { expected: char, found: char },
}

impl IdentifierError {
    /// The field at fault, where one is.
    pub fn field(&self) -> Option<Field> {
        match self {
            Self::Field { field, .. } => Some(*field),
            Self::Check { .. } => Some(Field::Check),
            Self::Empty | Self::FieldCount { .. } => None,
        }
    }
}

impl From<FieldError> for IdentifierError {
    fn from(error: FieldError) -> Self {
        Self::Field {
            field: error.field,
            value: error.value,
            reason: error.reason,
        }
    }
}

/// Checks that `value` is 1..=`max` characters of `0-9 A-Z` (either case) and
/// returns it uppercased.
fn code_field(field: Field, value: &str, max: usize) -> Result<String, FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, value, "must not be empty"));
    }
    if let Some((index, character)) = value
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
    {
        return Err(FieldError::new(
            field,
            value,
            format!(
                "character {} is {character:?}; only 0–9 and A–Z are allowed",
                index + 1
            ),
        ));
    }
    if value.len() > max {
        return Err(FieldError::new(
            field,
            value,
            format!("must be at most {max} characters, found {}", value.len()),
        ));
    }
    Ok(value.to_ascii_uppercase())
}

/// Implements `as_str`, `Display`, `FromStr` and string serde for a newtype
/// over its canonical text with a `parse(&str) -> Result<Self, FieldError>`.
macro_rules! text_field {
    ($($name:ident),* $(,)?) => {$(
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = FieldError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        serde_as_string!($name);
    )*};
}

/// Serialises through `Display`, deserialises through `FromStr`, so the wire
/// form is the canonical text and invalid text never becomes a value.
macro_rules! serde_as_string {
    ($($name:ident),* $(,)?) => {$(
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

/// The issuing node: the path from the national node `CN` down to the node
/// that issued the identifier, one segment per level, each segment assigned by
/// the parent (e.g. `CN.11` for a Beijing regional node, `CN.11.I05` for an
/// industry node under it). Uniqueness of the whole identifier rests on this:
/// a node only issues under its own prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodePrefix(String);

impl NodePrefix {
    /// The root segment, the national node.
    pub const NATIONAL: &str = "CN";
    /// Most segments a prefix may have, the national one included.
    pub const MAX_SEGMENTS: usize = 8;
    pub const MAX_SEGMENT_LEN: usize = 8;

    pub fn national() -> Self {
        Self(Self::NATIONAL.to_owned())
    }

    /// Parses `CN` followed by zero or more `.SEGMENT`, each segment 1–8
    /// characters of `0-9 A-Z`. Case-insensitive.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let field = Field::NodePrefix;
        let mut count = 0;
        for (index, segment) in text.split(NODE_SEPARATOR).enumerate() {
            count += 1;
            if segment.is_empty() {
                return Err(FieldError::new(
                    field,
                    text,
                    format!("segment {} is empty", index + 1),
                ));
            }
            code_field(field, segment, Self::MAX_SEGMENT_LEN).map_err(|e| {
                FieldError::new(field, text, format!("segment {}: {}", index + 1, e.reason))
            })?;
            if index == 0 && !segment.eq_ignore_ascii_case(Self::NATIONAL) {
                return Err(FieldError::new(
                    field,
                    text,
                    "must start with the national node CN",
                ));
            }
        }
        if count > Self::MAX_SEGMENTS {
            return Err(FieldError::new(
                field,
                text,
                format!("at most {} segments, found {count}", Self::MAX_SEGMENTS),
            ));
        }
        Ok(Self(text.to_ascii_uppercase()))
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split(NODE_SEPARATOR)
    }

    /// The node this one's prefix was obtained from; `None` for the national node.
    pub fn parent(&self) -> Option<Self> {
        self.0
            .rsplit_once(NODE_SEPARATOR)
            .map(|(parent, _)| Self(parent.to_owned()))
    }

    /// The prefix of a child node that this node assigns `segment` to.
    pub fn child(&self, segment: &str) -> Result<Self, FieldError> {
        code_field(Field::NodePrefix, segment, Self::MAX_SEGMENT_LEN)?;
        Self::parse(&format!("{}{NODE_SEPARATOR}{segment}", self.0))
    }

    /// Whether `other` is this node or a node below it.
    pub fn contains(&self, other: &Self) -> bool {
        other.0 == self.0
            || other
                .0
                .strip_prefix(&self.0)
                .is_some_and(|rest| rest.starts_with(NODE_SEPARATOR))
    }
}

/// The provider (owner of the resource), by the code the issuing node
/// assigned it at registration: 1–12 characters of `0-9 A-Z`, unique within
/// that node. The provider's USCC stays in the registry, not in the
/// identifier: it is 18 characters and not every owner has one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerCode(String);

impl OwnerCode {
    pub const MAX_LEN: usize = 12;

    pub fn parse(text: &str) -> Result<Self, FieldError> {
        code_field(Field::Owner, text, Self::MAX_LEN).map(Self)
    }
}

/// GB/T 4754-2017 sections (门类) and the divisions (大类) each spans. Every
/// division 01–97 belongs to exactly one section, so range membership is the
/// whole division table; classes (中类, 小类) are not encoded.
const SECTIONS: [(char, u8, u8); 20] = [
    ('A', 1, 5),
    ('B', 6, 12),
    ('C', 13, 43),
    ('D', 44, 46),
    ('E', 47, 50),
    ('F', 51, 52),
    ('G', 53, 60),
    ('H', 61, 62),
    ('I', 63, 65),
    ('J', 66, 69),
    ('K', 70, 70),
    ('L', 71, 72),
    ('M', 73, 75),
    ('N', 76, 79),
    ('O', 80, 82),
    ('P', 83, 83),
    ('Q', 84, 85),
    ('R', 86, 90),
    ('S', 91, 96),
    ('T', 97, 97),
];

/// The industry a resource serves: a GB/T 4754-2017 section letter and
/// two-digit division, e.g. `I65` (software and IT services) or `M73`
/// (research and experimental development).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Industry(String);

impl Industry {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let field = Field::Industry;
        if text.is_empty() {
            return Err(FieldError::new(field, text, "must not be empty"));
        }
        let upper = text.to_ascii_uppercase();
        let mut chars = upper.chars();
        let section = chars.next();
        let division: String = chars.collect();
        let Some((section, low, high)) = section
            .and_then(|s| SECTIONS.iter().find(|(letter, _, _)| *letter == s))
            .copied()
        else {
            return Err(FieldError::new(
                field,
                text,
                "section must be A–T (GB/T 4754-2017)",
            ));
        };
        if division.len() != 2 || !division.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(
                field,
                text,
                "division must be two digits after the section letter, e.g. I65",
            ));
        }
        let digits = division.as_bytes();
        let number = (digits[0] - b'0') * 10 + (digits[1] - b'0');
        if !(low..=high).contains(&number) {
            return Err(FieldError::new(
                field,
                text,
                format!("division {division} is not in section {section} ({low:02}–{high:02})"),
            ));
        }
        Ok(Self(upper))
    }

    /// A regular expression matching exactly what [`Industry::parse`]
    /// takes, for API documents.
    pub fn pattern() -> String {
        let alternatives: Vec<String> = SECTIONS
            .iter()
            .flat_map(|&(letter, low, high)| {
                (low..=high)
                    .map(move |d| format!("[{letter}{}]{d:02}", letter.to_ascii_lowercase()))
            })
            .collect();
        format!("^({})$", alternatives.join("|"))
    }

    /// Builds from parts, e.g. `('I', 65)`.
    pub fn new(section: char, division: u8) -> Result<Self, FieldError> {
        Self::parse(&format!("{section}{division:02}"))
    }

    /// The section letter (门类), `A`–`T`.
    pub fn section(&self) -> char {
        char::from(self.0.as_bytes()[0])
    }

    /// The division (大类), 1–97.
    pub fn division(&self) -> u8 {
        let digits = &self.0.as_bytes()[1..];
        (digits[0] - b'0') * 10 + (digits[1] - b'0')
    }
}

/// First two digits of every GB/T 2260 province-level division: provinces,
/// autonomous regions, municipalities, Taiwan (71), Hong Kong (81), Macao (82).
const PROVINCES: [u8; 34] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
];

/// Where a resource is: a GB/T 2260 six-digit administrative division code,
/// e.g. `110108` (Haidian, Beijing). The province part is checked; the full
/// county table is not, since it changes every year.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode(String);

impl RegionCode {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let field = Field::Location;
        if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(
                field,
                text,
                "must be a six-digit GB/T 2260 code",
            ));
        }
        let province = &text[..2];
        if !province.parse::<u8>().is_ok_and(|p| PROVINCES.contains(&p)) {
            return Err(FieldError::new(
                field,
                text,
                format!("{province} is not a GB/T 2260 province code"),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// A regular expression matching exactly what [`RegionCode::parse`]
    /// takes, for API documents.
    pub fn pattern() -> String {
        let provinces: Vec<String> = PROVINCES.iter().map(|p| p.to_string()).collect();
        format!("^({})[0-9]{{4}}$", provinces.join("|"))
    }

    /// Whether `text` is a prefix of some code [`RegionCode::parse`] takes:
    /// 2 (a province), 4 (a city) or 6 digits, under a province that exists.
    pub fn is_prefix(text: &str) -> bool {
        matches!(text.len(), 2 | 4 | 6)
            && text.bytes().all(|b| b.is_ascii_digit())
            && PROVINCES.iter().any(|p| text.starts_with(&p.to_string()))
    }

    /// A regular expression matching exactly what [`RegionCode::is_prefix`]
    /// takes (with surrounding blanks), for API documents.
    pub fn prefix_pattern() -> String {
        let provinces: Vec<String> = PROVINCES.iter().map(|p| p.to_string()).collect();
        format!("^\\s*({})([0-9]{{2}}){{0,2}}\\s*$", provinces.join("|"))
    }

    /// The province-level part (first two digits), e.g. `11` for Beijing.
    pub fn province(&self) -> &str {
        &self.0[..2]
    }
}

/// The kind of computing resource. Each has a stable one-letter code printed
/// in identifiers; codes are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// 通用算力: CPU servers.
    GeneralCompute,
    /// 智能算力: AI accelerators (GPU, NPU).
    AiAccelerator,
    /// 超算算力: supercomputing (HPC clusters).
    Supercomputing,
    /// 虚拟机.
    VirtualMachine,
    /// 容器.
    Container,
    /// API 服务: compute sold per call (e.g. model inference).
    ApiService,
    /// 资源池: a pool of the above offered as one.
    ResourcePool,
}

impl ResourceType {
    pub const ALL: [Self; 7] = [
        Self::GeneralCompute,
        Self::AiAccelerator,
        Self::Supercomputing,
        Self::VirtualMachine,
        Self::Container,
        Self::ApiService,
        Self::ResourcePool,
    ];

    pub fn code(self) -> char {
        match self {
            Self::GeneralCompute => 'C',
            Self::AiAccelerator => 'A',
            Self::Supercomputing => 'H',
            Self::VirtualMachine => 'V',
            Self::Container => 'K',
            Self::ApiService => 'S',
            Self::ResourcePool => 'P',
        }
    }

    /// Case-insensitive.
    pub fn from_code(code: char) -> Option<Self> {
        let code = code.to_ascii_uppercase();
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Self::GeneralCompute => "通用算力",
            Self::AiAccelerator => "智能算力",
            Self::Supercomputing => "超算算力",
            Self::VirtualMachine => "虚拟机",
            Self::Container => "容器",
            Self::ApiService => "API 服务",
            Self::ResourcePool => "资源池",
        }
    }

    pub fn name_en(self) -> &'static str {
        match self {
            Self::GeneralCompute => "general-purpose compute",
            Self::AiAccelerator => "AI accelerator compute",
            Self::Supercomputing => "supercomputing",
            Self::VirtualMachine => "virtual machine",
            Self::Container => "container",
            Self::ApiService => "API service",
            Self::ResourcePool => "resource pool",
        }
    }

    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let mut chars = text.chars();
        match (chars.next().and_then(Self::from_code), chars.next()) {
            (Some(resource_type), None) => Ok(resource_type),
            _ => Err(FieldError::new(
                Field::ResourceType,
                text,
                "must be one of C, A, H, V, K, S, P",
            )),
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl FromStr for ResourceType {
    type Err = FieldError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// What the resource is, in the owner's words: 1–16 characters, segments of
/// `0-9 A-Z` joined by single `-`, e.g. `H100-80G` or `X86-64C`. A `-` never
/// starts, ends or doubles, so every separator in an identifier sits between
/// two data characters, which the check relies on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpecCode(String);

impl SpecCode {
    pub const MAX_LEN: usize = 16;

    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let field = Field::Spec;
        for (index, segment) in text.split(SPEC_SEPARATOR).enumerate() {
            if segment.is_empty() {
                let reason = if text.is_empty() {
                    "must not be empty".to_owned()
                } else {
                    format!(
                        "segment {} is empty; '-' only joins two segments",
                        index + 1
                    )
                };
                return Err(FieldError::new(field, text, reason));
            }
            code_field(field, segment, Self::MAX_LEN).map_err(|e| {
                FieldError::new(field, text, format!("segment {}: {}", index + 1, e.reason))
            })?;
        }
        if text.len() > Self::MAX_LEN {
            return Err(FieldError::new(
                field,
                text,
                format!(
                    "must be at most {} characters, found {}",
                    Self::MAX_LEN,
                    text.len()
                ),
            ));
        }
        Ok(Self(text.to_ascii_uppercase()))
    }
}

/// The owner's serial for the resource: 1–10 characters of `0-9 A-Z`. Leading
/// zeros are part of the serial (`000123` and `123` are different resources).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(String);

impl Serial {
    pub const MAX_LEN: usize = 10;

    pub fn parse(text: &str) -> Result<Self, FieldError> {
        code_field(Field::Serial, text, Self::MAX_LEN).map(Self)
    }
}

text_field!(
    NodePrefix, OwnerCode, Industry, RegionCode, SpecCode, Serial
);

/// A Suanli resource identifier (算力标识).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier {
    node_prefix: NodePrefix,
    owner: OwnerCode,
    industry: Industry,
    location: RegionCode,
    resource_type: ResourceType,
    spec: SpecCode,
    serial: Serial,
}

impl Identifier {
    /// Every part is already valid, so an identifier always is.
    pub fn new(
        node_prefix: NodePrefix,
        owner: OwnerCode,
        industry: Industry,
        location: RegionCode,
        resource_type: ResourceType,
        spec: SpecCode,
        serial: Serial,
    ) -> Self {
        Self {
            node_prefix,
            owner,
            industry,
            location,
            resource_type,
            spec,
            serial,
        }
    }

    /// Parses the printed form. Surrounding whitespace is ignored and case is
    /// not significant; the first field that breaks its grammar is reported,
    /// then a check mismatch.
    pub fn parse(text: &str) -> Result<Self, IdentifierError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(IdentifierError::Empty);
        }
        let fields: Vec<&str> = text.split(FIELD_SEPARATOR).collect();
        let [
            node_prefix,
            owner,
            industry,
            location,
            resource_type,
            spec,
            serial,
            check,
        ] = fields[..]
        else {
            return Err(IdentifierError::FieldCount {
                found: fields.len(),
                expected: FIELD_COUNT,
            });
        };
        let identifier = Self::new(
            NodePrefix::parse(node_prefix)?,
            OwnerCode::parse(owner)?,
            Industry::parse(industry)?,
            RegionCode::parse(location)?,
            ResourceType::parse(resource_type)?,
            SpecCode::parse(spec)?,
            Serial::parse(serial)?,
        );

        let found = match check.as_bytes() {
            [byte] if CHECK_ALPHABET.contains(&byte.to_ascii_uppercase()) => {
                char::from(byte.to_ascii_uppercase())
            }
            _ => {
                return Err(FieldError::new(
                    Field::Check,
                    check,
                    "must be one character, 0–9, A–Z or *",
                )
                .into());
            }
        };
        let expected = identifier.check_character();
        if found != expected {
            return Err(IdentifierError::Check { expected, found });
        }
        Ok(identifier)
    }

    pub fn node_prefix(&self) -> &NodePrefix {
        &self.node_prefix
    }

    pub fn owner(&self) -> &OwnerCode {
        &self.owner
    }

    pub fn industry(&self) -> &Industry {
        &self.industry
    }

    pub fn location(&self) -> &RegionCode {
        &self.location
    }

    pub fn resource_type(&self) -> ResourceType {
        self.resource_type
    }

    pub fn spec(&self) -> &SpecCode {
        &self.spec
    }

    pub fn serial(&self) -> &Serial {
        &self.serial
    }

    /// The ISO/IEC 7064 MOD 37-2 check character over the first seven fields
    /// as printed, separators included.
    pub fn check_character(&self) -> char {
        check_character(self.body().bytes())
    }

    /// The first seven fields, joined: everything the check covers.
    fn body(&self) -> String {
        let s = FIELD_SEPARATOR;
        format!(
            "{}{s}{}{s}{}{s}{}{s}{}{s}{}{s}{}",
            self.node_prefix,
            self.owner,
            self.industry,
            self.location,
            self.resource_type,
            self.spec,
            self.serial,
        )
    }
}

/// ISO/IEC 7064 MOD 37-2 (pure system, modulus 37, radix 2) over a validated
/// identifier body, each separator read as value 36.
///
/// Why every single substitution and adjacent transposition of the printed
/// identifier is rejected:
///
/// - The check makes Σ vᵢ·2ⁿ⁻ⁱ ≡ 1 (mod 37) over body and check character.
///   37 is prime and no power of 2 is 0 mod 37, so changing one value
///   changes the sum. Data characters have values 0–35 and separators 36, so
///   a substitution between a data character and a separator, or between two
///   data characters, is caught here.
/// - Swapping adjacent values a ≠ b changes the sum by (a − b)·2ᵏ·(2 − 1),
///   not 0 mod 37. Two separators are never adjacent (every field and
///   segment is non-empty), so adjacent different characters always have
///   different values. The last swap, `_` with the check character, leaves an
///   empty check field.
/// - What the sum cannot see, a separator replaced by another, the grammar
///   does: removing or adding a `_` changes the field count, `.` appears
///   only in the node prefix, which forbids `-`, and `-` only in the spec
///   code, which forbids `.`.
fn check_character(body: impl Iterator<Item = u8>) -> char {
    let remainder = body.fold(0, |p, byte| (p + value(byte)) * 2 % MODULUS);
    char::from(CHECK_ALPHABET[((MODULUS + 1 - remainder) % MODULUS) as usize])
}

/// MOD 37-2 value of a body byte. A validated body holds only `0-9`, `A-Z`
/// and separators, so everything that is not a digit or letter is a
/// separator.
fn value(byte: u8) -> u32 {
    match byte {
        b'0'..=b'9' => u32::from(byte - b'0'),
        b'A'..=b'Z' => u32::from(byte - b'A') + 10,
        _ => SEPARATOR_VALUE,
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = self.body();
        let check = check_character(body.bytes());
        write!(f, "{body}{FIELD_SEPARATOR}{check}")
    }
}

impl FromStr for Identifier {
    type Err = IdentifierError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

serde_as_string!(Identifier, ExternalIdentifier);

/// Why a string is not an external identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalIdentifierError {
    #[error("external identifier: empty")]
    Empty,
    #[error("external identifier: missing ':' between scheme and value")]
    MissingColon,
    #[error("external identifier: missing scheme before ':'")]
    MissingScheme,
    #[error(
        "external identifier: scheme {scheme:?} must be a letter followed by at most 31 \
         letters, digits, '+', '.' or '-'"
    )]
    InvalidScheme { scheme: String },
    #[error("external identifier: empty value after ':'")]
    EmptyValue,
    #[error("external identifier: value is {found} characters, at most 256 allowed")]
    ValueTooLong { found: usize },
    #[error(
        "external identifier: value character {position} is {character:?}; only printable \
         ASCII other than space is allowed"
    )]
    InvalidValueCharacter { position: usize, character: char },
}

/// An identifier issued by someone else, chiefly the national platform, kept
/// beside ours as `scheme:value`. The value is stored verbatim and never
/// interpreted: its format is not ours to know, and guessing would break
/// when it is published.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalIdentifier {
    scheme: String,
    value: String,
}

impl ExternalIdentifier {
    pub const MAX_SCHEME_LEN: usize = 32;
    pub const MAX_VALUE_LEN: usize = 256;

    /// `scheme` is case-insensitive (like a URI scheme) and kept lowercase;
    /// `value` is kept exactly as given.
    pub fn new(scheme: &str, value: &str) -> Result<Self, ExternalIdentifierError> {
        if scheme.is_empty() {
            return Err(ExternalIdentifierError::MissingScheme);
        }
        let mut scheme_chars = scheme.chars();
        let scheme_ok = scheme.len() <= Self::MAX_SCHEME_LEN
            && scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'));
        if !scheme_ok {
            return Err(ExternalIdentifierError::InvalidScheme {
                scheme: scheme.to_owned(),
            });
        }
        if value.is_empty() {
            return Err(ExternalIdentifierError::EmptyValue);
        }
        if let Some((index, character)) = value
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_graphic())
        {
            return Err(ExternalIdentifierError::InvalidValueCharacter {
                position: index + 1,
                character,
            });
        }
        if value.len() > Self::MAX_VALUE_LEN {
            return Err(ExternalIdentifierError::ValueTooLong { found: value.len() });
        }
        Ok(Self {
            scheme: scheme.to_ascii_lowercase(),
            value: value.to_owned(),
        })
    }

    /// Splits at the first `:`; the value may contain more.
    pub fn parse(text: &str) -> Result<Self, ExternalIdentifierError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ExternalIdentifierError::Empty);
        }
        let (scheme, value) = text
            .split_once(':')
            .ok_or(ExternalIdentifierError::MissingColon)?;
        Self::new(scheme, value)
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for ExternalIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme, self.value)
    }
}

impl FromStr for ExternalIdentifier {
    type Err = ExternalIdentifierError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The worked example of `docs/identifiers.md`.
    const EXAMPLE: &str = "CN.11_PRV001_I65_110108_A_H100-80G_000123_T";
    /// One whose check value is 36, printed `*`.
    const STAR: &str = "CN.11_PRV001_I65_110108_A_H100-80G_000098_*";
    const DOC: &str = include_str!("../../docs/identifiers.md");

    fn parse(text: &str) -> Identifier {
        Identifier::parse(text).expect("valid identifier")
    }

    fn example() -> Identifier {
        Identifier::new(
            NodePrefix::parse("CN.11").expect("valid"),
            OwnerCode::parse("PRV001").expect("valid"),
            Industry::new('I', 65).expect("valid"),
            RegionCode::parse("110108").expect("valid"),
            ResourceType::AiAccelerator,
            SpecCode::parse("H100-80G").expect("valid"),
            Serial::parse("000123").expect("valid"),
        )
    }

    #[test]
    fn iso_7064_mod_37_2_reference_vector() {
        // ISO/IEC 7064 example: G123489654321 → Y.
        assert_eq!(check_character("G123489654321".bytes()), 'Y');
    }

    #[test]
    fn example_prints_and_parses() {
        let identifier = example();
        assert_eq!(identifier.to_string(), EXAMPLE);
        assert_eq!(identifier.check_character(), 'T');
        assert_eq!(parse(EXAMPLE), identifier);
        assert_eq!(parse(&EXAMPLE.to_ascii_lowercase()), identifier);
        assert_eq!(parse(&format!("  {EXAMPLE}\n")), identifier);
        assert_eq!(identifier.node_prefix().as_str(), "CN.11");
        assert_eq!(identifier.owner().as_str(), "PRV001");
        assert_eq!(identifier.industry().section(), 'I');
        assert_eq!(identifier.industry().division(), 65);
        assert_eq!(identifier.location().province(), "11");
        assert_eq!(identifier.resource_type(), ResourceType::AiAccelerator);
        assert_eq!(identifier.spec().as_str(), "H100-80G");
        assert_eq!(identifier.serial().as_str(), "000123");
    }

    /// The document states the example, its check and what a typo reports;
    /// this keeps it true.
    #[test]
    fn doc_examples_are_true() {
        assert!(DOC.contains(EXAMPLE));
        assert!(DOC.contains(STAR));
        parse(STAR);
        let typo = EXAMPLE.replace("110108", "110109");
        let error = Identifier::parse(&typo).expect_err("typo");
        assert!(DOC.contains(&typo), "doc shows the typo {typo}");
        assert!(DOC.contains(&error.to_string()), "doc shows: {error}");
        assert!(DOC.contains("914403001922038216"));
        crate::uscc::Uscc::parse("914403001922038216").expect("doc's USCC example");
    }

    #[test]
    fn star_check_character() {
        let identifier = parse(STAR);
        assert_eq!(identifier.check_character(), '*');
        assert_eq!(identifier.to_string(), STAR);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, Option<Field>)] = &[
            ("", None),
            ("   ", None),
            ("CN.11_PRV001_I65_110108_A_H100-80G_000123", None),
            ("CN.11_PRV001_I65_110108_A_H100_80G_000123_T", None),
            (
                "US.11_PRV001_I65_110108_A_H100-80G_000123_T",
                Some(Field::NodePrefix),
            ),
            (
                "CN..11_PRV001_I65_110108_A_H100-80G_000123_T",
                Some(Field::NodePrefix),
            ),
            (
                "CN.11._PRV001_I65_110108_A_H100-80G_000123_T",
                Some(Field::NodePrefix),
            ),
            (
                "CN.123456789_PRV001_I65_110108_A_H100-80G_000123_T",
                Some(Field::NodePrefix),
            ),
            (
                "CN.1-1_PRV001_I65_110108_A_H100-80G_000123_T",
                Some(Field::NodePrefix),
            ),
            (
                "CN.1.2.3.4.5.6.7.8_PRV001_I65_110108_A_H100-80G_000123_T",
                Some(Field::NodePrefix),
            ),
            ("CN.11__I65_110108_A_H100-80G_000123_T", Some(Field::Owner)),
            (
                "CN.11_PRV0010000001_I65_110108_A_H100-80G_000123_T",
                Some(Field::Owner),
            ),
            (
                "CN.11_PRV.01_I65_110108_A_H100-80G_000123_T",
                Some(Field::Owner),
            ),
            (
                "CN.11_PRV001_Z99_110108_A_H100-80G_000123_T",
                Some(Field::Industry),
            ),
            (
                "CN.11_PRV001_I66_110108_A_H100-80G_000123_T",
                Some(Field::Industry),
            ),
            (
                "CN.11_PRV001_I6_110108_A_H100-80G_000123_T",
                Some(Field::Industry),
            ),
            (
                "CN.11_PRV001_I065_110108_A_H100-80G_000123_T",
                Some(Field::Industry),
            ),
            (
                "CN.11_PRV001_I65_100000_A_H100-80G_000123_T",
                Some(Field::Location),
            ),
            (
                "CN.11_PRV001_I65_11010_A_H100-80G_000123_T",
                Some(Field::Location),
            ),
            (
                "CN.11_PRV001_I65_11010X_A_H100-80G_000123_T",
                Some(Field::Location),
            ),
            (
                "CN.11_PRV001_I65_110108_G_H100-80G_000123_T",
                Some(Field::ResourceType),
            ),
            (
                "CN.11_PRV001_I65_110108_AI_H100-80G_000123_T",
                Some(Field::ResourceType),
            ),
            (
                "CN.11_PRV001_I65_110108_A_-H100_000123_T",
                Some(Field::Spec),
            ),
            (
                "CN.11_PRV001_I65_110108_A_H100-_000123_T",
                Some(Field::Spec),
            ),
            (
                "CN.11_PRV001_I65_110108_A_H100--80G_000123_T",
                Some(Field::Spec),
            ),
            (
                "CN.11_PRV001_I65_110108_A_H100.80G_000123_T",
                Some(Field::Spec),
            ),
            (
                "CN.11_PRV001_I65_110108_A_H100-80G-SXM5-NVL_000123_T",
                Some(Field::Spec),
            ),
            ("CN.11_PRV001_I65_110108_A__000123_T", Some(Field::Spec)),
            (
                "CN.11_PRV001_I65_110108_A_H100-80G_00000001234_T",
                Some(Field::Serial),
            ),
            (
                "CN.11_PRV001_I65_110108_A_H100-80G_0001-23_T",
                Some(Field::Serial),
            ),
            (
                "CN.11_PRV001_I65_110108_A_H100-80G_000123_",
                Some(Field::Check),
            ),
            (
                "CN.11_PRV001_I65_110108_A_H100-80G_000123_TT",
                Some(Field::Check),
            ),
            (
                "CN.11_PRV001_I65_110108_A_H100-80G_000123_.",
                Some(Field::Check),
            ),
            (
                "CN.11_PRV001_I65_110108_A_H100-80G_000123_U",
                Some(Field::Check),
            ),
        ];
        for (text, field) in cases {
            let error = Identifier::parse(text).expect_err(text);
            assert_eq!(error.field(), *field, "{text}: {error}");
        }
    }

    #[test]
    fn error_messages() {
        let cases: &[(&str, &str)] = &[
            ("", "identifier: empty"),
            (
                "CN.11_PRV001_I65",
                "identifier: expected 8 fields separated by '_', found 3",
            ),
            (
                "CN.11_PRV001_Z99_110108_A_H100-80G_000123_T",
                "identifier: industry field \"Z99\": section must be A–T (GB/T 4754-2017)",
            ),
            (
                "CN.11_PRV001_I66_110108_A_H100-80G_000123_T",
                "identifier: industry field \"I66\": division 66 is not in section I (63–65)",
            ),
            (
                "CN.11_PRV001_I65_990108_A_H100-80G_000123_T",
                "identifier: location field \"990108\": 99 is not a GB/T 2260 province code",
            ),
            (
                "CN.11_PRV001_I65_110108_A_H100-80G_000123_U",
                "identifier: check character is 'U', expected 'T' (ISO/IEC 7064 MOD 37-2)",
            ),
            (
                "CN.11_PRV 001_I65_110108_A_H100-80G_000123_T",
                "identifier: owner field \"PRV 001\": character 4 is ' '; only 0–9 and A–Z are allowed",
            ),
        ];
        for (text, message) in cases {
            let error = Identifier::parse(text).expect_err(text);
            assert_eq!(error.to_string(), *message);
        }
    }

    #[test]
    fn industry_sections_partition_divisions() {
        for division in 1..=97u8 {
            let sections: Vec<char> = SECTIONS
                .iter()
                .filter(|(_, low, high)| (*low..=*high).contains(&division))
                .map(|(section, _, _)| *section)
                .collect();
            assert_eq!(sections.len(), 1, "division {division:02}");
            let industry = Industry::new(sections[0], division).expect("in its section");
            assert_eq!(industry.division(), division);
            assert_eq!(industry.section(), sections[0]);
        }
        assert!(Industry::parse("A00").is_err());
        assert!(Industry::parse("T98").is_err());
        assert!(Industry::parse("U97").is_err());
        assert_eq!(
            Industry::parse("m73").map(|i| i.to_string()),
            Ok("M73".to_owned())
        );
    }

    #[test]
    fn region_codes() {
        for province in PROVINCES {
            assert!(RegionCode::parse(&format!("{province}0000")).is_ok());
        }
        for text in [
            "000000", "100000", "160000", "830000", "11010", "1101081", "11O108",
        ] {
            let error = RegionCode::parse(text).expect_err(text);
            assert_eq!(error.field, Field::Location);
        }
    }

    #[test]
    fn resource_type_codes_are_distinct_and_round_trip() {
        let mut codes: Vec<char> = ResourceType::ALL.iter().map(|t| t.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ResourceType::ALL.len());
        for resource_type in ResourceType::ALL {
            let code = resource_type.code();
            assert_eq!(ResourceType::from_code(code), Some(resource_type));
            assert_eq!(
                ResourceType::from_code(code.to_ascii_lowercase()),
                Some(resource_type)
            );
            assert_eq!(resource_type.to_string().parse(), Ok(resource_type));
            assert!(!resource_type.name_zh().is_empty() && !resource_type.name_en().is_empty());
        }
    }

    #[test]
    fn node_prefix_hierarchy() {
        let national = NodePrefix::national();
        assert_eq!(national.parent(), None);
        let beijing = national.child("11").expect("valid segment");
        let industry = beijing.child("i05").expect("valid segment");
        assert_eq!(industry.as_str(), "CN.11.I05");
        assert_eq!(industry.segments().collect::<Vec<_>>(), ["CN", "11", "I05"]);
        assert_eq!(industry.parent(), Some(beijing.clone()));
        assert!(national.contains(&industry));
        assert!(beijing.contains(&industry));
        assert!(beijing.contains(&beijing));
        assert!(!industry.contains(&beijing));
        let other = national.child("110").expect("valid segment");
        assert!(!beijing.contains(&other));
        assert!(beijing.child("1.2").is_err());
        assert!(beijing.child("").is_err());
        assert!(NodePrefix::parse("cn").is_ok());
    }

    #[test]
    fn spec_and_serial_grammar() {
        for text in [
            "H100-80G",
            "X86-64C",
            "A",
            "0123456789ABCDEF",
            "MI300X-192G",
        ] {
            assert!(SpecCode::parse(text).is_ok(), "{text}");
        }
        for text in ["", "-", "H100 80G", "0123456789ABCDEFG", "H100_80G"] {
            assert!(SpecCode::parse(text).is_err(), "{text}");
        }
        assert!(Serial::parse("0123456789").is_ok());
        assert!(Serial::parse("01234567890").is_err());
        assert!(OwnerCode::parse("ABCDEFGHIJKL").is_ok());
        assert!(OwnerCode::parse("ABCDEFGHIJKLM").is_err());
    }

    #[test]
    fn serde_is_the_printed_form() {
        let identifier = example();
        let json = serde_json::to_string(&identifier).expect("serialises");
        assert_eq!(json, format!("\"{EXAMPLE}\""));
        let back: Identifier = serde_json::from_str(&json.to_ascii_lowercase()).expect("parses");
        assert_eq!(back, identifier);
        let typo = format!("\"{}\"", EXAMPLE.replace("_T", "_U"));
        assert!(serde_json::from_str::<Identifier>(&typo).is_err());

        let region: RegionCode = serde_json::from_str("\"440305\"").expect("parses");
        assert_eq!(
            serde_json::to_string(&region).ok().as_deref(),
            Some("\"440305\"")
        );
        assert!(serde_json::from_str::<Industry>("\"I66\"").is_err());
    }

    #[test]
    fn external_identifier_is_kept_verbatim() {
        let external = ExternalIdentifier::parse("CNCP:Ab-12:x/y?z=1").expect("valid");
        assert_eq!(external.scheme(), "cncp");
        assert_eq!(external.value(), "Ab-12:x/y?z=1");
        assert_eq!(external.to_string(), "cncp:Ab-12:x/y?z=1");
        let json = serde_json::to_string(&external).expect("serialises");
        assert_eq!(
            serde_json::from_str::<ExternalIdentifier>(&json).ok(),
            Some(external)
        );

        let cases: &[(&str, ExternalIdentifierError)] = &[
            ("", ExternalIdentifierError::Empty),
            ("cncp", ExternalIdentifierError::MissingColon),
            (":123", ExternalIdentifierError::MissingScheme),
            ("cncp:", ExternalIdentifierError::EmptyValue),
            (
                "1cncp:123",
                ExternalIdentifierError::InvalidScheme {
                    scheme: "1cncp".to_owned(),
                },
            ),
            (
                "cn_cp:123",
                ExternalIdentifierError::InvalidScheme {
                    scheme: "cn_cp".to_owned(),
                },
            ),
            (
                "cncp:12 3",
                ExternalIdentifierError::InvalidValueCharacter {
                    position: 3,
                    character: ' ',
                },
            ),
            (
                "cncp:标识",
                ExternalIdentifierError::InvalidValueCharacter {
                    position: 1,
                    character: '标',
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                ExternalIdentifier::parse(text).as_ref(),
                Err(expected),
                "{text}"
            );
        }
        let long = format!("cncp:{}", "x".repeat(257));
        assert_eq!(
            ExternalIdentifier::parse(&long),
            Err(ExternalIdentifierError::ValueTooLong { found: 257 })
        );
        let scheme = "a".repeat(33);
        assert!(ExternalIdentifier::new(&scheme, "1").is_err());
        assert!(ExternalIdentifier::new(&scheme[..32], "1").is_ok());
    }

    #[test]
    fn ours_never_reads_as_external() {
        assert!(!EXAMPLE.contains(':'));
        assert_eq!(
            ExternalIdentifier::parse(EXAMPLE),
            Err(ExternalIdentifierError::MissingColon)
        );
    }

    /// Every character that could be typed where a character of an
    /// identifier belongs: the printed alphabet, `*`, and lowercase letters.
    fn typeable() -> Vec<char> {
        ('0'..='9')
            .chain('A'..='Z')
            .chain('a'..='z')
            .chain(['.', '-', '_', '*'])
            .collect()
    }

    /// Asserts that each single substitution of `text` is rejected, except a
    /// letter's own lowercase, which is the same identifier.
    fn assert_substitutions_rejected(text: &str) -> Result<(), TestCaseError> {
        let original = Identifier::parse(text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let chars: Vec<char> = text.chars().collect();
        for index in 0..chars.len() {
            for substitute in typeable() {
                if substitute == chars[index] {
                    continue;
                }
                let mut changed = chars.clone();
                changed[index] = substitute;
                let changed: String = changed.into_iter().collect();
                let parsed = Identifier::parse(&changed);
                if substitute.to_ascii_uppercase() == chars[index] {
                    prop_assert_eq!(parsed.as_ref(), Ok(&original), "{}", changed);
                } else {
                    prop_assert!(parsed.is_err(), "{} accepted", changed);
                }
            }
        }
        Ok(())
    }

    fn assert_transpositions_rejected(text: &str) -> Result<(), TestCaseError> {
        let chars: Vec<char> = text.chars().collect();
        for index in 0..chars.len() - 1 {
            if chars[index] == chars[index + 1] {
                continue;
            }
            let mut swapped = chars.clone();
            swapped.swap(index, index + 1);
            let swapped: String = swapped.into_iter().collect();
            prop_assert!(Identifier::parse(&swapped).is_err(), "{} accepted", swapped);
        }
        Ok(())
    }

    #[test]
    fn fixed_examples_reject_every_substitution_and_transposition() {
        let deep = "CN.11.I05.A.B.C.D.E_Z_A01_820000_P_A-B-C-D-E-F-G-H_0_";
        let deep = format!(
            "{deep}{}",
            check_character(deep.trim_end_matches('_').bytes())
        );
        for text in [EXAMPLE, STAR, deep.as_str()] {
            parse(text);
            assert_substitutions_rejected(text).expect("substitutions");
            assert_transpositions_rejected(text).expect("transpositions");
        }
    }

    fn node_prefix() -> impl Strategy<Value = NodePrefix> {
        prop::collection::vec("[0-9A-Z]{1,8}", 0..4).prop_map(|segments| {
            let mut prefix = NodePrefix::national();
            for segment in segments {
                prefix = prefix.child(&segment).expect("generated from the grammar");
            }
            prefix
        })
    }

    fn industry() -> impl Strategy<Value = Industry> {
        prop::sample::select(SECTIONS.to_vec()).prop_flat_map(|(section, low, high)| {
            (low..=high).prop_map(move |division| {
                Industry::new(section, division).expect("division in its section")
            })
        })
    }

    fn region_code() -> impl Strategy<Value = RegionCode> {
        (prop::sample::select(PROVINCES.to_vec()), 0..10_000u32).prop_map(|(province, rest)| {
            RegionCode::parse(&format!("{province}{rest:04}")).expect("known province")
        })
    }

    fn spec_code() -> impl Strategy<Value = SpecCode> {
        prop::collection::vec("[0-9A-Z]{1,5}", 1..4)
            .prop_map(|segments| segments.join("-"))
            .prop_filter("at most 16 characters", |text| {
                text.len() <= SpecCode::MAX_LEN
            })
            .prop_map(|text| SpecCode::parse(&text).expect("generated from the grammar"))
    }

    fn identifier() -> impl Strategy<Value = Identifier> {
        (
            node_prefix(),
            "[0-9A-Z]{1,12}",
            industry(),
            region_code(),
            prop::sample::select(ResourceType::ALL.to_vec()),
            spec_code(),
            "[0-9A-Z]{1,10}",
        )
            .prop_map(
                |(node_prefix, owner, industry, location, resource_type, spec, serial)| {
                    Identifier::new(
                        node_prefix,
                        OwnerCode::parse(&owner).expect("generated from the grammar"),
                        industry,
                        location,
                        resource_type,
                        spec,
                        Serial::parse(&serial).expect("generated from the grammar"),
                    )
                },
            )
    }

    proptest! {
        #[test]
        fn print_parse_round_trips(identifier in identifier()) {
            let printed = identifier.to_string();
            let parsed = Identifier::parse(&printed);
            prop_assert_eq!(parsed.as_ref(), Ok(&identifier));
            prop_assert_eq!(printed.parse::<Identifier>().map(|i| i.to_string()), Ok(printed));
        }

        #[test]
        fn parse_is_case_insensitive(identifier in identifier()) {
            let lower = identifier.to_string().to_ascii_lowercase();
            prop_assert_eq!(Identifier::parse(&lower), Ok(identifier));
        }

        #[test]
        fn printed_form_is_url_safe(identifier in identifier()) {
            let printed = identifier.to_string();
            prop_assert!(printed.chars().all(|c| c.is_ascii_alphanumeric() || ".-_*".contains(c)));
        }

        #[test]
        fn external_identifier_round_trips(
            scheme in "[a-z][a-z0-9+.-]{0,31}",
            value in "[!-~]{1,256}",
        ) {
            let external = ExternalIdentifier::new(&scheme, &value);
            prop_assert!(external.is_ok());
            let printed = external.as_ref().map(ToString::to_string).unwrap_or_default();
            prop_assert_eq!(printed.clone(), format!("{scheme}:{value}"));
            prop_assert_eq!(ExternalIdentifier::parse(&printed), external);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn substitutions_are_rejected(identifier in identifier()) {
            assert_substitutions_rejected(&identifier.to_string())?;
        }

        #[test]
        fn adjacent_transpositions_are_rejected(identifier in identifier()) {
            assert_transpositions_rejected(&identifier.to_string())?;
        }
    }
}
