//! Unified social credit code (统一社会信用代码), GB 32100-2015.
//!
//! Providers register with a node under their USCC, so a mistyped code has to
//! be caught where it is entered, not discovered later in the registry. The
//! code carries two check characters and both are verified:
//!
//! - position 18, the GB 32100 check over positions 1–17 (modulus 31);
//! - position 17, the GB 11714 check of the embedded organisation code
//!   (positions 9–17, modulus 11).
//!
//! Positions 1 (registration authority) and 2 (organisation type) are only
//! checked against the alphabet: their code tables are extended by notice,
//! and a stale table here would reject real registrations.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Length of a code, in characters.
pub const LEN: usize = 18;

/// The GB 32100 alphabet: digits and uppercase letters without I, O, Z, S, V
/// (too easily read as 1, 0, 2, 5, U). A character's value is its index here.
pub const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Main check weights, 3^(i-1) mod 31 for positions i = 1..=17. Consecutive
/// weights differ by a factor of 3, which is why every adjacent transposition
/// changes the weighted sum (see `tests::weights_detect_adjacent_transpositions`).
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// GB 11714 weights for the eight body characters of the organisation code.
const ORGANISATION_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// Positions 3–8 (0-based 2..8): the GB/T 2260 administrative division code.
const REGION: std::ops::Range<usize> = 2..8;
/// Positions 9–17 (0-based 8..17): the GB 11714 organisation code.
const ORGANISATION: std::ops::Range<usize> = 8..17;

/// Why a string is not a valid USCC. Positions are 1-based, as printed in the
/// standard and on a business licence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    #[error("USCC must be 18 characters, found {found}")]
    Length { found: usize },
    /// Every character outside the alphabet, by position (from 1).
    #[error(
        "USCC {}: not in the GB 32100 alphabet (digits and letters except I, O, Z, S, V)",
        at_positions(.0)
    )]
    InvalidCharacters(Vec<(usize, char)>),
    /// Every non-digit of the region code, by position.
    #[error(
        "USCC {}: not a digit; positions 3–8 are a six-digit GB/T 2260 \
         administrative division code",
        at_positions(.0)
    )]
    RegionCode(Vec<(usize, char)>),
    #[error(
        "USCC position 17: organisation code check character is {found:?}, \
         expected {expected:?} (GB 11714)"
    )]
    OrganisationCheck { expected: char, found: char },
    #[error("USCC position 18: check character is {found:?}, expected {expected:?} (GB 32100)")]
    Check { expected: char, found: char },
}

/// `position 2 'I', position 5 'O'`.
fn at_positions(found: &[(usize, char)]) -> String {
    found
        .iter()
        .map(|(position, character)| format!("position {position} {character:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl UsccError {
    /// Whether the code is well formed and only a check character disagrees.
    ///
    /// An audited administrative override may accept such a code (codes in the
    /// wild exist whose embedded organisation code fails GB 11714); a shape
    /// error never can be overridden. The main check is verified first, so a
    /// typo anywhere reports [`UsccError::Check`], and
    /// [`UsccError::OrganisationCheck`] means the printed code is consistent
    /// under GB 32100 and only its organisation code is off.
    pub fn is_check_failure(&self) -> bool {
        matches!(self, Self::Check { .. } | Self::OrganisationCheck { .. })
    }
}

/// A validated unified social credit code, in canonical (uppercase) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc(String);

impl Uscc {
    /// Parses a code as typed: surrounding whitespace is ignored and lowercase
    /// letters are accepted.
    pub fn parse(code: &str) -> Result<Self, UsccError> {
        validate(code)?;
        Ok(Self(code.trim().to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Positions 3–8: the GB/T 2260 administrative division code of the
    /// registering authority. Not checked against the GB/T 2260 table: codes
    /// registered at national level use `100000`, which is no province.
    pub fn region_code(&self) -> &str {
        &self.0[REGION]
    }

    /// Positions 9–17: the GB 11714 organisation code, its check included.
    pub fn organisation_code(&self) -> &str {
        &self.0[ORGANISATION]
    }
}

/// Checks a code as [`Uscc::parse`] would, without keeping it.
pub fn validate(code: &str) -> Result<(), UsccError> {
    let code = code.trim();
    let found = code.chars().count();
    if found != LEN {
        return Err(UsccError::Length { found });
    }

    let mut upper = [0u8; LEN];
    let mut values = [0u8; LEN];
    let mut invalid = Vec::new();
    for (index, character) in code.chars().enumerate() {
        match alphabet_value(character) {
            Some(value) => {
                values[index] = value;
                upper[index] = ALPHABET[usize::from(value)];
            }
            None => invalid.push((index + 1, character)),
        }
    }
    // All at once: whoever copied the code fixes it in one go.
    if !invalid.is_empty() {
        return Err(UsccError::InvalidCharacters(invalid));
    }

    let not_digits: Vec<(usize, char)> = REGION
        .clone()
        .filter(|&i| !upper[i].is_ascii_digit())
        .map(|i| (i + 1, char::from(upper[i])))
        .collect();
    if !not_digits.is_empty() {
        return Err(UsccError::RegionCode(not_digits));
    }

    let expected = main_check(&values);
    if upper[17] != expected {
        return Err(UsccError::Check {
            expected: char::from(expected),
            found: char::from(upper[17]),
        });
    }

    let expected = organisation_check(&upper[8..16]);
    if upper[16] != expected {
        return Err(UsccError::OrganisationCheck {
            expected: char::from(expected),
            found: char::from(upper[16]),
        });
    }
    Ok(())
}

/// Value of a character in the GB 32100 alphabet, case-insensitively.
fn alphabet_value(character: char) -> Option<u8> {
    let byte = u8::try_from(character).ok()?.to_ascii_uppercase();
    let index = ALPHABET.iter().position(|&a| a == byte)?;
    u8::try_from(index).ok()
}

/// GB 32100 check character for the values of positions 1–17.
fn main_check(values: &[u8]) -> u8 {
    let sum: u32 = values
        .iter()
        .zip(WEIGHTS)
        .map(|(&value, weight)| u32::from(value) * weight)
        .sum();
    ALPHABET[((31 - sum % 31) % 31) as usize]
}

/// GB 11714 check character for the eight body characters of an
/// organisation code. GB 11714 values letters by their place in the full
/// Latin alphabet (A = 10 … Z = 35), unlike GB 32100.
fn organisation_check(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .zip(ORGANISATION_WEIGHTS)
        .map(|(&byte, weight)| {
            let value = if byte.is_ascii_digit() {
                byte - b'0'
            } else {
                byte - b'A' + 10
            };
            u32::from(value) * weight
        })
        .sum();
    match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        digit => b'0' + digit as u8,
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Uscc {
    type Err = UsccError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::parse(code)
    }
}

impl Serialize for Uscc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Uscc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Self::parse(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Published codes of well-known companies, as printed on their business
    /// licences; each passes both checks.
    const REAL: &[&str] = &[
        "914403001922038216", // 华为技术有限公司 (Huawei Technologies Co., Ltd.)
        "9144030071526726XG", // 腾讯科技（深圳）有限公司 (Tencent)
        "91330100799655058B", // 阿里巴巴（中国）有限公司 (Alibaba (China))
        "91110000802100433B", // 北京百度网讯科技有限公司 (Baidu)
        "91110108551385082Q", // 小米科技有限责任公司 (Xiaomi)
        "911101085923662400", // 北京字节跳动科技有限公司 (ByteDance)
    ];

    /// Every character a user could plausibly type into a code field.
    fn typeable() -> impl Iterator<Item = char> {
        ('0'..='9').chain('A'..='Z').chain('a'..='z')
    }

    /// Completes 16 characters (positions 1–16) into a valid code.
    fn complete(first16: &str) -> String {
        let mut code = first16.to_owned();
        code.push(char::from(organisation_check(&first16.as_bytes()[8..16])));
        let values: Vec<u8> = code
            .chars()
            .map(|c| alphabet_value(c).expect("generated from the alphabet"))
            .collect();
        code.push(char::from(main_check(&values)));
        code
    }

    #[test]
    fn real_codes_are_valid() {
        for code in REAL {
            let uscc = Uscc::parse(code).expect("published code");
            assert_eq!(uscc.as_str(), *code);
        }
    }

    #[test]
    fn accessors_slice_the_standard_positions() {
        let uscc = Uscc::parse("914403001922038216").expect("valid");
        assert_eq!(uscc.region_code(), "440300");
        assert_eq!(uscc.organisation_code(), "192203821");
    }

    #[test]
    fn parse_trims_and_uppercases() {
        let uscc = Uscc::parse("  9144030071526726xg\n").expect("valid");
        assert_eq!(uscc.to_string(), "9144030071526726XG");
        assert_eq!("9144030071526726xg".parse::<Uscc>(), Ok(uscc));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases: &[(&str, UsccError)] = &[
            ("", UsccError::Length { found: 0 }),
            ("91440300192203821", UsccError::Length { found: 17 }),
            ("9144030019220382166", UsccError::Length { found: 19 }),
            (
                "9I4403001922038216",
                UsccError::InvalidCharacters(vec![(2, 'I')]),
            ),
            (
                "91440300192203821é",
                UsccError::InvalidCharacters(vec![(18, 'é')]),
            ),
            // Every wrong character, not the first alone.
            (
                "9I44O30019220382SZ",
                UsccError::InvalidCharacters(vec![(2, 'I'), (5, 'O'), (17, 'S'), (18, 'Z')]),
            ),
            (
                "9144A30B1922038216",
                UsccError::RegionCode(vec![(5, 'A'), (8, 'B')]),
            ),
            (
                "914403001922038217",
                UsccError::Check {
                    expected: '6',
                    found: '7',
                },
            ),
        ];
        for (code, expected) in cases {
            assert_eq!(validate(code).as_ref(), Err(expected), "{code:?}");
        }
    }

    #[test]
    fn organisation_check_failure_is_reported_and_overridable() {
        // Main check recomputed over a wrong organisation check character:
        // the shape of a code in the wild that fails only GB 11714.
        let mut values: Vec<u8> = "91440300192203821"
            .chars()
            .filter_map(alphabet_value)
            .collect();
        values[16] = 2; // '2' where GB 11714 requires '1'
        let mut code: String = values
            .iter()
            .map(|&v| char::from(ALPHABET[usize::from(v)]))
            .collect();
        code.push(char::from(main_check(&values)));

        let error = Uscc::parse(&code).expect_err("organisation check fails");
        assert_eq!(
            error,
            UsccError::OrganisationCheck {
                expected: '1',
                found: '2'
            }
        );
        assert!(error.is_check_failure());
        assert!(error.to_string().contains("position 17"));
        assert!(!UsccError::Length { found: 3 }.is_check_failure());
    }

    #[test]
    fn messages_name_the_position() {
        let error = validate("9144030019220382I6").expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "USCC position 17 'I': not in the GB 32100 alphabet \
             (digits and letters except I, O, Z, S, V)"
        );
        let error = validate("9O44030019220382I6").expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "USCC position 2 'O', position 17 'I': not in the GB 32100 alphabet \
             (digits and letters except I, O, Z, S, V)"
        );
        let error = validate("914403001922038217").expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "USCC position 18: check character is '7', expected '6' (GB 32100)"
        );
    }

    #[test]
    fn serde_is_a_string() {
        let uscc = Uscc::parse("91330100799655058B").expect("valid");
        let json = serde_json::to_string(&uscc).expect("serialises");
        assert_eq!(json, "\"91330100799655058B\"");
        assert_eq!(
            serde_json::from_str::<Uscc>("\"91330100799655058b\"").ok(),
            Some(uscc)
        );
        assert!(serde_json::from_str::<Uscc>("\"91330100799655058C\"").is_err());
    }

    #[test]
    fn weights_are_powers_of_three() {
        let mut weight = 1;
        for w in WEIGHTS {
            assert_eq!(w, weight);
            weight = weight * 3 % 31;
        }
    }

    /// Why transpositions are always caught: swapping different values a, b
    /// at positions i, i+1 changes the weighted sum by (a − b)(W_i − W_{i+1}).
    /// 31 is prime, 0 < |a − b| < 31, so this is zero mod 31 only if
    /// W_i ≡ W_{i+1}. The check character (position 18) has weight 1 in the
    /// sum that the check makes ≡ 0, so the pairs to verify are the 17 weights
    /// followed by 1.
    #[test]
    fn weights_detect_adjacent_transpositions() {
        let mut weights = WEIGHTS.to_vec();
        weights.push(1);
        for pair in weights.windows(2) {
            assert_ne!(pair[0] % 31, pair[1] % 31);
        }
        assert!(weights.iter().all(|w| w % 31 != 0));
    }

    fn valid_code() -> impl Strategy<Value = String> {
        let alphabet = || prop::sample::select(ALPHABET.map(char::from).to_vec());
        (
            prop::collection::vec(alphabet(), 2),
            "[0-9]{6}",
            prop::collection::vec(alphabet(), 8),
        )
            .prop_map(|(head, region, body)| {
                let first16: String = head.into_iter().chain(region.chars()).chain(body).collect();
                complete(&first16)
            })
    }

    proptest! {
        #[test]
        fn generated_codes_parse(code in valid_code()) {
            let uscc = Uscc::parse(&code);
            prop_assert_eq!(uscc.as_ref().map(Uscc::as_str), Ok(code.as_str()));
            prop_assert_eq!(Uscc::parse(&code.to_ascii_lowercase()), uscc);
        }

        /// Every single-character substitution is rejected: position 18 has
        /// weight 1 and every other weight is non-zero mod the prime 31. A
        /// lowercase letter is the same character, so only it may parse.
        #[test]
        fn substitutions_are_rejected(code in valid_code()) {
            for index in 0..LEN {
                for substitute in typeable() {
                    let original = char::from(code.as_bytes()[index]);
                    let mut changed: Vec<char> = code.chars().collect();
                    changed[index] = substitute;
                    let changed: String = changed.into_iter().collect();
                    let same = substitute.to_ascii_uppercase() == original;
                    prop_assert_eq!(validate(&changed).is_ok(), same, "{}", changed);
                }
            }
        }

        #[test]
        fn adjacent_transpositions_are_rejected(code in valid_code()) {
            let bytes = code.as_bytes();
            for index in 0..LEN - 1 {
                if bytes[index] == bytes[index + 1] {
                    continue;
                }
                let mut swapped = bytes.to_vec();
                swapped.swap(index, index + 1);
                let swapped = String::from_utf8(swapped).expect("ASCII");
                prop_assert!(validate(&swapped).is_err(), "{}", swapped);
            }
        }
    }
}
