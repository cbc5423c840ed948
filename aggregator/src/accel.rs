//! Accelerator models as people name them and as demands and price lists
//! ask for them.

/// Does `model_key` (a lower-cased accelerator name) name the model asked for?
/// Every word of the demand must be a word of the name: "h100" finds
/// "nvidia h100 80gb hbm3", "a100" does not find "nvidia rtx a1000".
pub fn model_matches(model_key: &str, wanted: &str) -> bool {
    let words: Vec<&str> = model_key
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    wanted
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .all(|w| words.contains(&w))
}

/// Does the accelerator named `model_key` come from `vendor` (lower case)?
pub fn vendor_matches(model_key: &str, vendor: &str) -> bool {
    // NVML names do not always say NVIDIA ("Tesla V100-SXM2-32GB").
    const NVIDIA_BRANDS: &[&str] = &["nvidia", "tesla", "geforce", "quadro", "titan"];
    let words: Vec<&str> = model_key
        .split(|c: char| !c.is_ascii_alphanumeric())
        .collect();
    if vendor == "nvidia" {
        words.iter().any(|w| NVIDIA_BRANDS.contains(w))
    } else {
        words.contains(&vendor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_aliases_match_whole_words() {
        assert!(model_matches("nvidia h100 80gb hbm3", "h100"));
        assert!(model_matches("nvidia h100 80gb hbm3", "h100 80gb"));
        assert!(model_matches("nvidia a100-sxm4-80gb", "a100"));
        assert!(!model_matches("nvidia rtx a1000", "a100"));
        assert!(!model_matches("nvidia h100 80gb hbm3", "h800"));
        assert!(vendor_matches("tesla v100-sxm2-32gb", "nvidia"));
        assert!(vendor_matches("ascend 910b", "ascend"));
        assert!(!vendor_matches("ascend 910b", "nvidia"));
    }
}
